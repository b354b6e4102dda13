"""The errors of code generation, in the user's terms."""

from symnet.errors import SymnetError


class CodegenError(SymnetError):
    """A declaration cannot be lowered to numpy, or the generated files cannot be written."""

    def __init__(self, declaration: str, problem: str):
        self.declaration = declaration
        self.problem = problem
        super().__init__(f"declaration {declaration!r}: {problem}" if declaration else problem)
