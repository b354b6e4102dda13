"""The layer's declaration language where files written before symnet/declare/ import it
from (`from symnet.matrix.layers import Layer, broadcast, elementwise, size`): a re-export
of symnet.declare.layer, its home."""

from symnet.declare.layer import Layer, activation_layer, broadcast, elementwise, size

__all__ = ["Layer", "activation_layer", "broadcast", "elementwise", "size"]
