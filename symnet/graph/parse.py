"""A user's EXPR and --at values as sympy, exactly as written.

The text is read with Python's own parser (`ast`) and turned into sympy *unevaluated*, so
the graph has the gates the user wrote, in that order: `-(w0*x0 + w1*x1 + w2)` stays a
sum times -1 (sympy would distribute the minus), `max(x, 0)` keeps x first (sympy's Max
sorts, and the order decides where a tie sends the gradient). Only the functions below
are known; anything else is an error that names it. Nothing is ever `eval`-ed.
"""

from __future__ import annotations

import ast
from functools import reduce

import sympy as sp

from symnet.graph.gates import (
    GraphError,
    OrderedMax,
    OrderedMin,
    Sigmoid,
    Softplus,
    evaluated,
    unevaluated,
)


def _fold(function):
    """max(a, b, c) = max(max(a, b), c): binary gates, in the order written."""
    def fold(*args):
        if len(args) < 2:
            raise TypeError("takes at least 2 arguments")
        return reduce(function, args)
    return fold


def _one(function):
    def call(*args):
        if len(args) != 1:
            raise TypeError(f"takes 1 argument ({len(args)} given)")
        return function(args[0])
    return call


FUNCTIONS = {
    "exp": _one(sp.exp), "log": _one(sp.log), "ln": _one(sp.log), "tanh": _one(sp.tanh),
    "sigmoid": _one(Sigmoid), "sin": _one(sp.sin), "cos": _one(sp.cos),
    "sinh": _one(sp.sinh), "cosh": _one(sp.cosh),
    "abs": _one(sp.Abs), "Abs": _one(sp.Abs),
    "sqrt": _one(lambda a: unevaluated(sp.Pow, a, sp.S.Half)),
    "relu": _one(lambda a: OrderedMax(sp.S.Zero, a)),
    "softplus": _one(Softplus), "silu": _one(lambda a: unevaluated(sp.Mul, a, Sigmoid(a))),
    "max": _fold(OrderedMax), "Max": _fold(OrderedMax),
    "min": _fold(OrderedMin), "Min": _fold(OrderedMin),
}
CONSTANTS = {"pi": sp.pi, "E": sp.E}


def _divide(a, b):
    inverse = unevaluated(sp.Pow, b, -1)
    return inverse if a == 1 else unevaluated(sp.Mul, a, inverse)


_BINARY = {
    ast.Add: lambda a, b: unevaluated(sp.Add, a, b),
    ast.Sub: lambda a, b: unevaluated(sp.Add, a, unevaluated(sp.Mul, -1, b)),
    ast.Mult: lambda a, b: unevaluated(sp.Mul, a, b),
    ast.Div: _divide,
    ast.Pow: lambda a, b: unevaluated(sp.Pow, a, b),
}
_KINDS = {"Compare": "a comparison", "Attribute": "an attribute", "Subscript": "a subscript",
          "Lambda": "a lambda", "IfExp": "an if-expression", "BoolOp": "and/or"}


class _Translator:
    def __init__(self, text: str, what: str):
        self.text = text
        self.what = what

    def error(self, node, problem: str) -> GraphError:
        part = ast.get_source_segment(self.text, node) or self.text
        return GraphError(f"{self.what} {self.text!r}: {problem} (at {part!r})")

    def __call__(self, node) -> sp.Expr:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            kind = type(node).__name__
            raise self.error(node, f"cannot graph {_KINDS.get(kind, kind)}")
        return method(node)

    def _BinOp(self, node):
        if type(node.op) not in _BINARY:
            raise self.error(node, f"unknown operator {type(node.op).__name__}")
        return _BINARY[type(node.op)](self(node.left), self(node.right))

    def _UnaryOp(self, node):
        operand = self(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if not isinstance(node.op, ast.USub):
            raise self.error(node, f"unknown operator {type(node.op).__name__}")
        return -operand if operand.is_Number else unevaluated(sp.Mul, -1, operand)

    def _Constant(self, node):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise self.error(node, "not a real number")
        if isinstance(node.value, int):
            return sp.Integer(node.value)
        try:  # from the text, so 0.1 is exactly 1/10
            return sp.Rational(ast.get_source_segment(self.text, node))
        except (TypeError, ValueError):
            return sp.Rational(repr(node.value))

    def _Name(self, node):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise self.error(node, f"{node.id} is a function; write {node.id}(...)")
        return sp.Symbol(node.id)

    def _Call(self, node):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = ast.get_source_segment(self.text, node.func)
            raise self.error(node, f"unknown function {name!r} (known: "
                                   f"{', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise self.error(node, f"{node.func.id} takes no keyword arguments")
        try:
            return FUNCTIONS[node.func.id](*(self(arg) for arg in node.args))
        except TypeError as exc:
            raise self.error(node, f"{node.func.id} {exc}") from None


def parse_expression(text: str, what: str = "expression") -> sp.Expr:
    """EXPR as an unevaluated sympy expression with the structure written."""
    text = text.strip().replace("^", "**")  # x^2 as people write it (Python's ^ is xor)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise GraphError(f"{what} {text!r} is malformed: {exc.msg} "
                         f"(column {exc.offset})") from None
    except UnicodeEncodeError:  # a byte of the command line that is not UTF-8
        raise GraphError(f"{what} {text!r} is not UTF-8 text") from None
    except (RecursionError, MemoryError):
        raise GraphError(f"{what} of {len(text)} characters nests too deeply to be "
                         f"read") from None
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        shown = text if len(text) <= 60 else f"{text[:40]}...{text[-12:]}"
        raise GraphError(f"{what} {shown!r} nests {depth} operations deep; symnet graph "
                         f"draws graphs at most {MAX_DEPTH} deep, for reading")
    return _Translator(text, what)(tree.body)


#: the deepest expression `symnet graph` takes: its gates are shown one per row, and
#: sympy's unevaluated trees are walked recursively (2000 nested sums exhaust the stack)
MAX_DEPTH = 200


def _depth(node: ast.AST) -> int:
    """How deeply `node` nests, counted without recursion (a deep tree must not exhaust
    the stack while it is measured)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def parse_value(name: str, text: str) -> sp.Expr:
    """One --at value: a number or a constant expression (-2, 0.5, 1/3, pi/4)."""
    value = parse_expression(text, f"the value of {name}")
    if value.free_symbols:
        raise GraphError(f"the value of {name}, {text!r}, is not a number")
    value = evaluated(value)
    if not (value.is_real and value.is_finite):
        raise GraphError(f"the value of {name}, {text!r}, is not a finite real number")
    return value


def parse_point(text: str) -> dict:
    """'x=-2,y=5,z=-4' -> {'x': -2, 'y': 5, 'z': -4}."""
    point = {}
    for item in text.split(","):
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name.isidentifier() or not value.strip():
            raise GraphError(f"--at {text!r}: {item.strip()!r} is not NAME=VALUE")
        if name in point:
            raise GraphError(f"--at {text!r} gives {name} twice")
        point[name] = parse_value(name, value)
    return point
