"""A notebook code cell as Python: its syntax tree, as IPython would run it (magics rewritten)."""

import ast


def parse_cell(source: str) -> ast.Module | None:
    """The cell's syntax tree, or None when it is not Python even after IPython's rewriting."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None
