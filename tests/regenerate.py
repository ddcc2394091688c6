"""Rewrite generated/ from the current code: the example graph, and MobileNetV2 (code only:
its 14 MB graph is built by the tests, not committed).

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


def main() -> None:
    out = ROOT / "generated"
    _, files = convert(ROOT / "examples" / "lenet.pb")
    (out / "example").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / "example" / name).write_text(text)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mobilenetv2.pb"
        zoo.build("mobilenetv2", str(path))
        _, files = convert(path)
    (out / "mobilenetv2").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / "mobilenetv2" / name).write_text(text)
    print("regenerated", out)


if __name__ == "__main__":
    main()
