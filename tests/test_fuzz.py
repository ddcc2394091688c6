"""Fuzzing: mutants of valid graphs either convert or are rejected with a Graph2PyError, and
whole cases (tests/fuzz_cases.py) keep the command line's contract (tests/fuzz_contract.py).

The mutations live in tests/fuzzing.py and tests/fuzz_cases.py, shared with the long campaign
in bench/fuzz.py. Here
hypothesis drives them through `st.randoms()`, so a failure shrinks to the fewest, simplest
mutation choices. The run is derandomized and bounded for CI; the campaign runs for hours.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fuzz_cases
import fuzz_contract
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


# -- whole cases through the command line -----------------------------------------------------

FORMAT_SEEDS = fuzz_cases.format_seeds()


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rng=st.randoms(use_true_random=False))
def test_cases_keep_the_command_line_contract(tmp_path_factory, rng):
    """Any case (a GraphDef, SavedModel or checkpoint mutant, hostile names, odd file types, an
    awkward output directory) exits 0, 2, 3 or 4 with only error lines, leaves nothing
    half-written, and what converts compiles (tests/fuzz_contract.py)."""
    name, case = fuzz_cases.make_case(SEEDS, FORMAT_SEEDS, rng)
    note(f"seed {name}, steps: {' + '.join(case.steps)}")
    root = tmp_path_factory.mktemp("case") / "root"
    outcome = fuzz_contract.run_and_clean(case, root)
    assert not outcome.violations, (outcome.code, outcome.stderr, outcome.violations)


def test_the_contract_catches_a_payload_that_runs(tmp_path):
    """The import check is no formality: generated code whose text escaped and runs is caught."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.py").write_text(f'"""x"""\n__import__("os").mkdir("{fuzzing.MARK}")\n')
    (out / "load_weights.py").write_text("import model\n")
    importer = fuzz_contract.ImportCheck()
    try:
        problems = importer.check(out, tmp_path / "cwd")
    finally:
        importer.stop()
    assert any("CODE RAN" in p for p in problems), problems


@pytest.mark.parametrize(
    "stderr, problem",
    [
        ("graph2py: error: a\nb\n", "no error line"),
        ("graph2py: error: a\x1b[31mb\n", "unprintable"),
        ("graph2py: error: a\u2028b\n", "unprintable"),
        ("Traceback (most recent call last):\ngraph2py: error: x\n", "traceback"),
    ],
)
def test_the_contract_catches_error_lines_that_break(tmp_path, stderr, problem):
    problems = fuzz_contract.check(3, "", stderr, {}, {}, tmp_path, tmp_path / "out")
    assert any(problem in p for p in problems), problems


def test_the_contract_catches_half_written_output(tmp_path):
    before = {".": ("dir",)}
    after = {".": ("dir",), "./out": ("dir",), "./out/model.py": ("file", b"x = 1\n")}
    problems = fuzz_contract.check(3, "", "graph2py: error: x\n", before, after, tmp_path, tmp_path)
    assert any("changed files" in p for p in problems), problems
    problems = fuzz_contract.check(
        70, "", "graph2py: internal error: x\n", {}, {}, tmp_path, tmp_path
    )
    assert "exit code 70" in problems


@pytest.mark.parametrize("kind", fuzz_cases.SPECIAL)
def test_every_file_type_is_refused_or_read_cleanly(tmp_path, kind):
    """The graph file itself as a FIFO, a link to /dev/zero, a directory, ...: one error line
    (or, for an unreadable file read by root, a conversion), never a hang."""
    data = SEEDS["tiny"].SerializeToString()
    case = fuzz_cases.Case({"g.pb": data}, "g.pb", [], special={"g.pb": kind})
    outcome = fuzz_contract.run_and_clean(case, tmp_path / "root")
    assert not outcome.violations, outcome.violations
    assert outcome.code == (0 if kind == "unreadable" and os.geteuid() == 0 else 3), outcome.stderr


# Campaign cases (bench/fuzz.py) that once broke the contract, rebuilt as the campaign built
# them (its case generator seeded `f"{seed}:{case}"`): seed 17's Reshape to a runtime shape
# of a scalar (IndexError) and a meta graph whose variable's `shared_name` was damaged into a
# tensor (ValueError).
CAMPAIGN = [(17, 45802), (17, 53245)]


@pytest.mark.parametrize("seed, number", CAMPAIGN)
def test_campaign_cases_replay_clean(tmp_path, seed, number):
    import random

    _, case = fuzz_cases.make_case(SEEDS, FORMAT_SEEDS, random.Random(f"{seed}:{number}"))
    outcome = fuzz_contract.run_and_clean(case, tmp_path / "root")
    assert outcome.code in (0, 2, 3, 4) and not outcome.violations, (outcome.stderr, case.steps)
