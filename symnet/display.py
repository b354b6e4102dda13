"""The page of a derivation, where the command line, the tests and the README have always
found it: a re-export of symnet.show.page and of symnet.notation's printers and rows."""

from symnet.notation import (  # noqa: F401
    Row,
    ShowsAsLatex,
    TexPrinter,
    TextPrinter,
    as_cases,
    latex,
    render_latex_block,
    render_text,
    text,
)
from symnet.show.page import declaration_latex, derivation_latex, describe  # noqa: F401
