"""The CLI's rich consoles: text is printed as given, never read as markup.

Arm names, trial ids, file names and error messages are user text; rich would read
``[x]`` in them as a style tag (dropping it, or raising MarkupError on ``[/bold]``) and
``:name:`` as an emoji code. Every console the CLI prints through comes from here, and
styles are given as objects (``Text``, ``style=``), not as markup in strings.
"""

from __future__ import annotations

from rich.console import Console


def plain_console(stderr: bool = False) -> Console:
    """A console with markup, emoji codes, highlighting and wrapping off.

    >>> import io
    >>> c = plain_console()
    >>> c.file = io.StringIO()
    >>> c.print('pip install "lrlab[data]" [/bold] :x:')
    >>> c.file.getvalue()
    'pip install "lrlab[data]" [/bold] :x:\\n'
    """
    # soft_wrap: a long line (an error, a path) stays one line in logs and pipes
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True)
