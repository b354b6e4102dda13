"""The runtime: trains networks with generated code, and with numpy only.

Nothing here imports sympy or jinja2; the algebra was paid for at generation time.
"""
