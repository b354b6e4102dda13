"""The verification stage: `check(declaration)` gives every verdict of a declaration
(proved, refuted with a counterexample, or probed; claims.py). `check` dispatches on the
declaration's type; each level registers its handler from its own module: activations and
losses in claims.py, layers and networks in matrix.py (entry by entry in entrywise.py),
tensor layers in symnet.index.check; the last two are imported here so that `from
symnet.verify import check` covers every level. The probes compare values at points
computed in high precision by at_point.py.
"""

import symnet.index.check  # noqa: F401  (registers the tensor layers' checks)
import symnet.verify.matrix  # noqa: F401  (registers the layers' and networks' checks)
from symnet.verify.claims import (
    DIGITS,
    KINK_MARGIN,
    PROBED,
    PROBES,
    PROVED,
    REFUTED,
    TOLERANCE,
    ProbeSpace,
    Verdict,
    VerificationError,
    about_claim,
    about_declaration,
    check,
    check_claim,
    check_primitives,
    probe,
    probe_space,
    prove,
)

__all__ = ["DIGITS", "KINK_MARGIN", "PROBED", "PROBES", "PROVED", "REFUTED", "TOLERANCE",
           "ProbeSpace", "Verdict", "VerificationError", "about_claim", "about_declaration",
           "check", "check_claim", "check_primitives", "probe", "probe_space", "prove"]
