"""A tensor layer's full-size statements written as few passes over memory (lower.py).

numpy spends a statement over an N x D array in passes over memory and in allocating
each result: `gamma*(dY - sum_dY/N - sum_dY_x_hat*x_hat/N)/sigma` builds six N x D
temporaries, and at N x D = 1024 x 4096 an allocating pass costs about four in-place
ones (fresh pages are faulted in). So a statement whose value spans all of its target's
axes (a full array) is written the way a careful person writes it: the factors that span
fewer axes (a statistic, a parameter row, a constant) folded first into one small array,
one allocation for the result, every other term added or multiplied into it in place;
a function of a full value (exp) applied in place; a full temporary that nothing reads
afterwards lends its buffer. A subexpression that two statements of the forward share
(X - mu in var and x_hat) is computed once, as a named temporary (`shared_temporaries`).
What does not fit these forms is one expression (arrays.py), as before.
"""

from __future__ import annotations

import sympy as sp

from symnet.codegen.layout import statement
from symnet.index import arrays


def free_indices(expr: sp.Expr) -> set:
    """The indices expr varies over: its entries' indices, less those a sum binds."""
    if isinstance(expr, sp.Indexed):
        return {i for i in expr.indices if isinstance(i, sp.Symbol)}
    if isinstance(expr, sp.Sum):
        return free_indices(expr.function) - set(expr.variables)
    return set().union(*(free_indices(a) for a in expr.args)) if expr.args else set()


# --- shared subexpressions of the forward ---------------------------------------------------


def in_layout_indices(expr: sp.Expr, layout: arrays.Layout) -> sp.Expr:
    """Each one-index sum written over the layout index it runs along (Sum(f(k), k) with k
    at c's axis -> Sum(f(c), c)), so that equal bodies compare equal."""
    def rename(s: sp.Sum) -> sp.Sum:
        if len(s.limits) != 1:
            return s
        variable, lower, upper = s.limits[0]
        axis = layout._axis_of(s.function, variable)
        own = layout.order[axis] if axis is not None else None
        if own is None or own == variable or own in free_indices(s.function):
            return s
        return sp.Sum(s.function.xreplace({variable: own}), (own, lower, upper))

    return expr.replace(lambda e: isinstance(e, sp.Sum), rename)


def _composites(expr: sp.Expr, full: set) -> set:
    """The subexpressions of expr worth naming: sums or functions spanning `full`."""
    return {e for e in sp.preorder_traversal(expr)
            if (e.is_Add or isinstance(e, sp.Function)) and free_indices(e) == full
            and e.has(sp.Indexed)}


def temporary_name(expr: sp.Expr, taken: set) -> str:
    """A name that says what the temporary holds: X_minus_mu, exp_X_minus_shift."""
    def name(e) -> str:
        if isinstance(e, sp.Indexed):
            return str(e.base)
        if e.is_Add and len(e.args) == 2:
            plus, minus = sorted(e.args, key=lambda t: t.could_extract_minus_sign())
            if minus.could_extract_minus_sign():
                return f"{name(plus)}_minus_{name(-minus)}"
        if isinstance(e, sp.Function) and len(e.args) == 1:
            return f"{type(e).__name__}_{name(e.args[0])}"
        return "shared"

    stem = name(expr)
    found, k = stem, 2
    while found in taken:
        found, k = f"{stem}_{k}", k + 1
    taken.add(found)
    return found


def shared_temporaries(definitions: list, layout: arrays.Layout, taken: set):
    """([(temporary entry, its value)], the definitions with each shared full
    subexpression as its temporary): computed once, not once per statement."""
    full = set(layout.order[:len(layout.layer.output.indices)])
    definitions = [(entry, in_layout_indices(value, layout)) for entry, value in definitions]
    counted = {}
    for _, value in definitions:
        for e in _composites(value, full):
            counted[e] = counted.get(e, 0) + 1
    shared = [e for e, times in counted.items() if times > 1]
    outermost = [e for e in shared if not any(e != o and o.has(e) for o in shared)]
    outermost.sort(key=sp.default_sort_key)
    indices = sorted(full, key=layout.axis.get)
    temporaries, replaced = [], {}
    for e in outermost:
        entry = sp.IndexedBase(temporary_name(e, taken), real=True)[tuple(indices)]
        layout.placed.add(entry.base)
        layout.axes_of[entry.base] = tuple(layout.axis[i] for i in indices)
        layout.names[entry.base] = str(entry.base)
        temporaries.append((entry, e))
        replaced[e] = entry
    return temporaries, [(entry, value.xreplace(replaced)) for entry, value in definitions]


# --- statements -----------------------------------------------------------------------------


class Statements:
    """Lines that compute each target; `lendable`: temporaries whose buffer a statement
    may take where it reads them for the last time."""

    def __init__(self, layout: arrays.Layout, lendable: set = frozenset()):
        self.layout = layout
        self.lendable = set(lendable)

    def code(self, expr: sp.Expr) -> str:
        return arrays.code_text(self.layout.array(expr))

    def whole(self, entry: sp.Indexed, value: sp.Expr) -> bool:
        """Whether value spans all of entry's axes, which lead the layout in its order, and
        takes no sum of its own (a reduction is one expression: `.mean`, `ones @ X`)."""
        axes = [self.layout.axis.get(i) for i in entry.indices]
        return axes == list(range(len(axes))) and free_indices(value) == set(entry.indices) \
            and not value.has(sp.Sum)

    def assign(self, entry: sp.Indexed, value: sp.Expr, later: list = ()) -> list[str]:
        """`entry = value` as lines; `later`: the values of the statements that follow
        (a temporary they read lends no buffer)."""
        target = str(entry.base) if entry.base not in self.layout.names \
            else self.layout.names[entry.base]
        if not self.whole(entry, value):
            return statement(target, self.code(value))
        lendable = {t for t in self.lendable if _uses(value, t) == 1
                    and not any(_uses(v, t) for v in later)}
        self.full, self._still = set(entry.indices), set(lendable)
        lines = self._fresh(target, value)
        self.lendable -= lendable - self._still      # the buffers taken
        return lines

    # --- a full value into a fresh buffer (or a lent one) --------------------------------

    def _fresh(self, target: str, value: sp.Expr) -> list[str]:
        if value.is_Add:
            return self._sum(target, value)
        if value.is_Mul:
            return self._product(target, value)
        if isinstance(value, sp.Indexed):
            name = self.code(value)
            if value.base in self._still:
                self._still.discard(value.base)
                return [f"{target} = {name}"]          # its buffer, read for the last time
            return [f"{target} = {name}.{arrays.array_method('copy')}()"]
        if isinstance(value, sp.Function) and len(value.args) == 1 \
                and self._is_full(value.args[0]):
            applied = self.code(value.func(sp.Symbol("_")))
            if applied == f"np.{value.func.__name__}(_)":
                return self._fresh(target, value.args[0]) + \
                    [f"np.{value.func.__name__}({target}, out={target})"]
        return statement(target, self.code(value))

    def _is_full(self, expr: sp.Expr) -> bool:
        return free_indices(expr) == self.full

    def _split(self, product: sp.Expr) -> tuple[list, sp.Expr]:
        """(the full factors, the product of the others: a row, a column, a constant)."""
        factors = sp.Mul.make_args(product)
        full = [f for f in factors if self._is_full(f)]
        return full, sp.Mul(*(f for f in factors if not self._is_full(f)))

    def _small(self, expr: sp.Expr) -> str:
        shown = self.code(expr)
        return shown if expr.is_Atom or isinstance(expr, sp.Indexed) else f"({shown})"

    def _product(self, target: str, value: sp.Expr) -> list[str]:
        full, small = self._split(value)
        if not full:       # a row times a column: full only together, one expression
            return statement(target, self.code(value))
        # a composite factor or a lent buffer first: it allocates (or takes) the result
        full.sort(key=lambda f: isinstance(f, sp.Indexed) and f.base not in self._still)
        first, rest = full[0], full[1:]
        if isinstance(first, sp.Indexed) and first.base not in self._still:
            if rest and isinstance(rest[0], sp.Indexed):
                lines = [f"{target} = {self.code(first)}*{self.code(rest[0])}"]
                rest = rest[1:]
            elif small != 1:
                lines, small = [f"{target} = {self.code(first)}*{self._small(small)}"], 1
            else:
                lines = self._fresh(target, first)
        else:
            lines = self._fresh(target, first)
        lines += [f"{target} *= {self.code(f)}" for f in rest]
        if small == -1:
            lines.append(f"{target} *= -1")
        elif small != 1:
            lines.append(f"{target} *= {self.code(small)}")
        return lines

    def _sum(self, target: str, value: sp.Expr) -> list[str]:
        terms = sp.Add.make_args(value)
        small = sp.Add(*(t for t in terms if not self._is_full(t)))
        full = [t for t in terms if self._is_full(t)]
        simple = [t for t in full if _signed_entry(t) is not None]
        others = [t for t in full if _signed_entry(t) is None]
        if others:
            lines, rest = self._fresh(target, others[0]), others[1:] + simple
        else:   # entries only: the first one or two of them (and the small terms) at once
            lent = [t for t in simple if _signed_entry(t)[1].base in self._still
                    and _signed_entry(t)[0] == 1]
            first = lent[0] if lent else simple[0]
            rest = [t for t in simple if t is not first]
            if lent:
                lines = self._fresh(target, first)
            elif small != 0:
                lines, small = statement(target, self.code(first + small)), 0
            elif rest:
                lines, rest = statement(target, self.code(first + rest[0])), rest[1:]
            else:
                lines = statement(target, f"{self.code(first)}.{arrays.array_method('copy')}()")
        for term in rest + ([small] if small != 0 else []):
            if term.could_extract_minus_sign():
                lines.append(f"{target} -= {self.code(-term)}")
            else:
                lines.append(f"{target} += {self.code(term)}")
        return lines


def _signed_entry(term: sp.Expr):
    """(1, X[n, d]) for X[n, d], (-1, X[n, d]) for -X[n, d], else None."""
    if isinstance(term, sp.Indexed):
        return 1, term
    sign, rest = term.as_coeff_Mul()
    if sign == -1 and isinstance(rest, sp.Indexed):
        return -1, rest
    return None


def _uses(expr: sp.Expr, base) -> int:
    return sum(1 for e in sp.preorder_traversal(expr)
               if isinstance(e, sp.Indexed) and e.base == base)
