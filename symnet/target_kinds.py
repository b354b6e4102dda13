"""The kinds of target a loss takes, in one place.

A loss declares ``target_kind=`` one of these; a generated loss module carries it as
``TARGET_KIND``, and the runtime encodes class labels by it. They are plain strings, so
that declarations, generated code and JSON output spell them as they always have; this
module imports nothing, so the runtime (numpy only) may use it too.
"""

ONE_HOT = "one_hot"          # a one-hot vector y over the C classes
CLASS_INDEX = "class_index"  # the index t of the target class, in 0..C-1
REAL = "real"                # a real vector y (a distribution, or per-class labels)
SIGN = "sign"                # a label in {-1, +1} (a scalar score per sample)

#: every kind, in the order a declaration's error lists them
TARGET_KINDS = (ONE_HOT, CLASS_INDEX, REAL, SIGN)
#: kinds whose target is a vector per sample: an IndexedBase y, (N, C) rows in a batch
VECTOR_KINDS = (ONE_HOT, REAL)
#: kinds whose target is an array of the scores' dtype in a batch (a class index is not)
ARRAY_KINDS = (ONE_HOT, REAL, SIGN)

#: what a target of each kind is, for people
DESCRIPTIONS = {ONE_HOT: "a one-hot vector", CLASS_INDEX: "a class index in 0..C-1",
                REAL: "a real vector", SIGN: "a label in {-1, +1}"}
