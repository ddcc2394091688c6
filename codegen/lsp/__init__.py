"""`graph2py lsp`: a language server (pygls, stdio) for generated models and their graphs.

server.py      the server class: caches and diagnostics
features.py    the server, its LSP handlers and `graph2py.*` commands
model_file.py  a generated model.py: header, named layer calls, which path each call takes
blocks.py      a factored model.py: the concrete layers each block call and layer call builds
graphs.py      a graph file analysed by the converter core, cached per sha256
render.py      hover Markdown
jobs.py        regenerate/check as cancellable subprocesses with $/progress
worker.py      the subprocess side of jobs.py
"""


def main() -> None:
    from .features import main as serve

    serve()
