"""Rewrite generated/ from the current code: the example graph, and MobileNetV2 and ResNet50
(code only: their graphs, 14 MB and 100 MB, are built by the tests, not committed).

python tests/regenerate.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import zoo  # noqa: E402
from codegen.convert import convert  # noqa: E402

# the zoo models whose generated code is committed: the factored form reviewers read
ZOO = ("mobilenetv2", "resnet50")


def main() -> None:
    out = ROOT / "generated"
    # its header names ../../examples/lenet.pb: `graph2py check --fresh generated/example` works
    _, files = convert(ROOT / "examples" / "lenet.pb", directory=out / "example")
    (out / "example").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / "example" / name).write_text(text)
    for model in ZOO:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{model}.pb"
            zoo.build(model, str(path))
            _, files = convert(path)
        (out / model).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / model / name).write_text(text)
    print("regenerated", out)


if __name__ == "__main__":
    main()
