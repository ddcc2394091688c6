"""Fuzzing: mutants of valid graphs either convert or are rejected with a Graph2PyError.

The mutations live in tests/fuzzing.py, shared with the long campaign in bench/fuzz.py. Here
hypothesis drives them through `st.randoms()`, so a failure shrinks to the fewest, simplest
mutation choices. The run is derandomized and bounded for CI; the campaign runs for hours.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fuzzing
from codegen.errors import Graph2PyError

SEEDS = fuzzing.seeds()


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="graph2py-fuzz-") as path:
        yield Path(path)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_converts_unmutated(name, workdir):
    """Mutants start from graphs that convert, so a rejection is the mutation's doing."""
    mutant = fuzzing.Mutant(SEEDS[name].SerializeToString(), ".pb", [])
    rendered = fuzzing.convert_mutant(mutant, workdir)
    assert "def build_model()" in rendered["model.py"]


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(name=st.sampled_from(sorted(SEEDS)), rng=st.randoms(use_true_random=False))
def test_mutants_convert_or_are_rejected(workdir, name, rng):
    mutant = fuzzing.mutate(SEEDS[name], rng)
    note(f"seed graph {name}, mutations: {' + '.join(mutant.steps)}")
    try:
        fuzzing.convert_mutant(mutant, workdir)
    except Graph2PyError as err:
        assert err.problems and all(p and "\n" not in p for p in err.problems), err.problems
