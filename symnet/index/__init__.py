"""Tensor layers in index notation, past their declaration (declared entry by
entry over named indices in symnet/declare/tensor.py): their VJPs derived through the
named statistics (derive.py; deltas.py sums the Kronecker deltas), shown as a page
(page.py), proved for every size (check.py,
registered with `symnet.verify.check`) and lowered to numpy reductions and matrix products
(arrays.py, lower.py, registered with `symnet.codegen.lower`; passes.py writes each
full-size statement in few passes, in place; contract.py chains a contraction of three
or more arrays as pairs, each computed once; products.py writes a pair that is one BLAS
product as its matrix product). Matrix layers take the same path:
from_matrix.py writes a Layer in index form, layer_path.py derives its VJPs here and
to_matrix.py brings them back to matrix form, layer_sizes.py proves its verdicts for every
size; stages.py (index_network) composes layers of any kind as the stages of one tensor
layer, and keeps each stage as a layer of its own: chain.py derives a network of them stage
by stage with the chain rule between (its verdicts in check.py), lower_chain.py generates
its one module. `symnet.derive.derive`
dispatches here for an IndexLayer.

The declaration language is re-exported here, where files written before symnet.declare
import it from (`from symnet.index import IndexLayer, ...`); nothing else is imported:
check.py and lower.py build on the verification and code-generation stages, which import
`symnet.derive`, which imports this package's derive.py.
"""

from symnet.declare.tensor import (
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
