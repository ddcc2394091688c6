"""The errors graph2py reports to users, and the exit codes the CLI maps them to.

Everything a user can cause (a bad file, an unknown op, a wrong tensor name) is raised as a
`Graph2PyError` carrying one readable line per problem; anything else is a bug in graph2py and
keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_STALE = 1  # `graph2py check --fresh`: the files differ from what regenerating gives
EXIT_USAGE = 2  # bad command line (argparse uses 2 as well)
EXIT_BAD_INPUT = 3  # the file cannot be read as a graph, or the graph is malformed
EXIT_UNSUPPORTED = 4  # a valid graph that graph2py cannot convert yet
EXIT_MISMATCH = 5  # `graph2py check`: outputs differ beyond the tolerance
EXIT_INTERNAL = 70  # a bug in graph2py (EX_SOFTWARE)


def printable(text: str) -> str:
    """Text from a graph (or a file, or an exception) made safe to print: every character that
    is not printable (a line break, CR, ESC, BEL, C1 controls, U+2028, bidi overrides) spelled
    as its Python escape (`\\n`, `\\x1b`, `\\u2028`). An error stays one line, and no escape
    sequence in a node name reaches the terminal (colours, a window title, a hyperlink)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class Graph2PyError(Exception):
    """A problem the user can act on. `problems` holds one line each."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, *problems: str):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class BadInputError(Graph2PyError):
    """The input file is unreadable or the graph inside it is malformed."""

    exit_code = EXIT_BAD_INPUT


class UsageError(Graph2PyError):
    """The command line names something that does not exist (a tensor, a file)."""

    exit_code = EXIT_USAGE


class UnsupportedError(Graph2PyError):
    """A well-formed graph with ops graph2py has no pattern for yet."""

    exit_code = EXIT_UNSUPPORTED
