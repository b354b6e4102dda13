"""Tensor layers in index notation (issue 15): declared entry by entry over named indices
(declare.py), their VJPs derived through the named statistics (derive.py), shown as a page
(page.py), proved for every size (check.py, registered with `symnet.verify.check`) and
lowered to numpy reductions and matrix products (lower.py, registered with
`symnet.codegen.lower`). `symnet.derive.derive` dispatches here for an IndexLayer.

Only the declaration language is imported here: check.py and lower.py build on the
verification and code-generation stages, which import `symnet.derive`, which imports
this package's derive.py.
"""

from symnet.index.declare import (
    IndexDeclarationError,
    IndexLayer,
    index,
    indices,
    over,
    size,
    tensors,
)

__all__ = ["IndexDeclarationError", "IndexLayer", "index", "indices", "over", "size",
           "tensors"]
