"""What a declaration is, one module per level; everything is validated here, at
declaration, so that a mistake is reported where it was written.

    scalar.py       Activation, Loss, Regularizer and the hand records a person attaches
                    (Gradient, Jacobian, Identity, Kink)
    elementwise.py  an activation applied entry by entry to a matrix (elementwise(relu, X))
    layer.py        Layer: a batch-first matrix expression (size, broadcast, its shapes)
    network.py      Network: stages of layers (use), a loss and a regulariser
    tensor.py       IndexLayer: a layer entry by entry over named indices, and its checks
    step.py         Optimizer and TrainingStep: a network's fused training step
    validation.py   the checks they share: names, scalar expressions, real symbols, params

The catalog's entries are declared with these in symnet/catalog/; nothing here imports a
later stage (derive, verify, codegen). The package imports none of its modules, so that
declaring an activation does not load the matrix level.
"""
