"""Shared fixtures: each zoo model is built and frozen once per test session (per xdist
worker; tests of one model are grouped onto one worker) and converted once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import zoo  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Zoo:
    def __init__(self, root: Path):
        self.root = root
        self._built: dict[str, Path] = {}
        self._converted: dict[str, tuple] = {}

    def graph(self, name: str) -> Path:
        if name not in self._built:
            path = self.root / f"{name}.pb"
            zoo.build(name, str(path))
            self._built[name] = path
        return self._built[name]

    def converted(self, name: str):
        """(spec, directory with model.py and load_weights.py)."""
        if name not in self._converted:
            from codegen.cli import write_atomically
            from codegen.convert import convert

            spec, files = convert(self.graph(name))
            out = self.root / name
            write_atomically(out, files)
            self._converted[name] = (spec, out, files)
        return self._converted[name]


@pytest.fixture(scope="session")
def model_zoo(tmp_path_factory) -> Zoo:
    return Zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="session")
def example_graph() -> Path:
    return ROOT / "examples" / "lenet.pb"
