"""A long fuzzing campaign: mutate valid graphs, SavedModels and checkpoints, run the command line
on each mutant in-process, check its contract, tally.

    python bench/fuzz.py --cases 100000 --seed 0 --jobs 2
    python bench/fuzz.py --seed 0 --case 4711      # replay one case, with its traceback

The cases are tests/fuzz_cases.py's (GraphDef mutants from tests/fuzzing.py, SavedModels and
checkpoints with hostile keys, names and file types), driven here by a plain `random.Random` per
case (hypothesis's bookkeeping costs more than most conversions). Case i of seed S always builds
the same mutant, so any finding can be replayed with `--case i`.

The contract (tests/fuzz_contract.py): exit 0, 2, 3 or 4; when not 0, only `graph2py: error:`
lines, printable, no traceback, nothing written or changed; when 0, both files compile and
nothing but them changed; a sample of the successes (every one whose code holds the payloads'
marker, and one in `--import-every` of the others) is imported by a separate process, which
must create nothing. A broken contract is a crash; a case that runs longer than `--timeout`
seconds is a hang. Either makes the script exit 1. The address space is capped (`--memory-mb`)
so that a runaway allocation shows as MemoryError (exit 70, a crash) rather than taking the
machine down.

Formatting (libcst tidying and black) is by far the slowest step and a pure function of the
rendered text, and most mutants that convert render the same text as an earlier one (a changed
weight value, a dropped unused node) but for the file's sha256 in the header comment. The two
functions are memoised on their input with the digest factored out, so each distinct source is
still formatted once; `--no-memo` turns that (and the cached Jinja environment) off.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import fuzz_cases  # noqa: E402
import fuzz_contract  # noqa: E402
import fuzzing  # noqa: E402
from fuzz_contract import CaseTimeout  # noqa: E402


def _alarm(signum, frame):
    raise CaseTimeout("case ran longer than the time limit")


STOP = {"asked": False, "workers": []}


def _stop(signum, frame):
    """SIGTERM or SIGINT: finish the case at hand, then report what ran (a campaign cut short
    still gives its figures). The parent passes the signal on to its workers."""
    STOP["asked"] = True
    for worker in STOP["workers"]:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGTERM)


def case_rng(seed: int, case: int) -> random.Random:
    return random.Random(f"{seed}:{case}")


def build_case(seeds: tuple[dict, dict], seed: int, case: int) -> tuple[str, fuzz_cases.Case]:
    return fuzz_cases.make_case(*seeds, case_rng(seed, case))


DIGEST = re.compile(r"\b[0-9a-f]{64}\b")
NEUTRAL = "0" * 64


def memoised(fn):
    """fn(source, ...) cached on its arguments, with the source file's sha256 (which differs
    for every mutant but only ever sits in a comment, where formatting leaves it untouched)
    replaced by zeros in the key and put back into the result."""
    cache: dict = {}

    def wrapper(source: str, *args, **kwargs):
        digests = DIGEST.findall(source)
        neutral = DIGEST.sub(NEUTRAL, source)
        key = (neutral, args, tuple(sorted(kwargs.items())))
        if key not in cache:
            if len(cache) > 20_000:
                cache.clear()
            cache[key] = fn(neutral, *args, **kwargs)
        result = cache[key]
        for digest in digests:
            result = result.replace(NEUTRAL, digest, 1)
        return result

    return wrapper


def memoise_formatting() -> None:
    """Cache tidy/format_source (see the module docstring) and the Jinja
    environment, which `render` rebuilds, templates compiled anew, on every call."""
    import codegen.convert as convert_module
    import codegen.emit as emit_module

    convert_module.tidy = memoised(convert_module.tidy)
    convert_module.format_source = memoised(convert_module.format_source)
    emit_module._environment = functools.lru_cache(maxsize=1)(emit_module._environment)


def where(tb) -> str:
    """The innermost frame inside codegen/ (else the innermost of all): file:line in function."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if "/codegen/" in f.filename.replace("\\", "/")] or frames
    f = ours[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"


def category(line: str) -> str:
    """An error line with the specifics (paths, names, numbers) blurred, so that a campaign's
    tally groups by kind of problem."""
    line = line.removeprefix(fuzz_contract.PREFIX)
    line = re.sub(r"^/\S*?(\.pb|\.pbtxt|\.meta|saved|ckpt|\.index|\.py)\S*?: ", "", line)
    line = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "'…'", line)
    line = re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?\b", "N", line)
    line = re.sub(r"\[[^\]]*\]|\([^)]*\)", "[…]", line)
    return line[:90]


@dataclass
class Tally:
    tried: int = 0
    codes: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    by_seed: Counter = field(default_factory=Counter)
    several_lines: int = 0  # rejections reported as more than one error line
    imported: int = 0
    crashed: dict = field(default_factory=dict)  # (kind, place) -> count, cases, example
    hangs: list = field(default_factory=list)  # (case, seed name, steps)

    def merge(self, other: "Tally") -> None:
        self.tried += other.tried
        self.codes += other.codes
        self.rejected += other.rejected
        self.by_seed += other.by_seed
        self.several_lines += other.several_lines
        self.imported += other.imported
        self.hangs += other.hangs
        for key, entry in other.crashed.items():
            mine = self.crashed.setdefault(key, {"count": 0, "cases": [], "example": None})
            mine["count"] += entry["count"]
            mine["cases"] += entry["cases"]
            mine["example"] = mine["example"] or entry["example"]


def crash_detail(case: fuzz_cases.Case, root: Path) -> tuple[tuple[str, str], str, str]:
    """((kind, place), one line, traceback) of an exit-70 case, rerun with --debug."""
    try:
        fuzz_contract.run_case(case, root, debug=True)
    except BaseException as err:  # noqa: BLE001 - the exception is the finding
        if isinstance(err, (KeyboardInterrupt, CaseTimeout)):
            raise
        return (
            (type(err).__name__, where(err.__traceback__)),
            _one_line(err),
            traceback.format_exc(),
        )
    finally:
        fuzz_cases.remove(root)
    return ("exit 70", "not reproduced with --debug"), "", ""


def run_cases(args, numbers) -> Tally:
    """One worker's share of the campaign."""
    seeds = (fuzzing.seeds(), fuzz_cases.format_seeds())
    if not args.no_memo:
        memoise_formatting()
    importer = fuzz_contract.ImportCheck() if args.import_every else None
    if importer is not None:
        importer.start()  # before the address-space cap: TensorFlow's import reserves more
    if args.memory_mb:
        limit = args.memory_mb * 1024 * 1024
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.signal(signal.SIGALRM, _alarm)
    shm = Path("/dev/shm")  # a case creates and removes a dozen directories: memory is faster
    workdir = Path(tempfile.mkdtemp(prefix="graph2py-fuzz-", dir=shm if shm.is_dir() else None))
    cwd = workdir / "cwd"
    cwd.mkdir()
    os.chdir(cwd)
    tally = Tally()
    start = time.perf_counter()
    deadline = start + args.max_minutes * 60 if args.max_minutes else None
    try:
        for number in numbers:
            if STOP["asked"] or deadline and time.perf_counter() > deadline:
                break
            one_case(args, seeds, number, workdir, cwd, importer, tally)
            if args.progress and tally.tried % args.progress == 0:
                rate = tally.tried / (time.perf_counter() - start)
                print(f"... {tally.tried} cases, {rate:.1f}/s", file=sys.stderr, flush=True)
    finally:
        if importer is not None:
            tally.imported = importer.imported
            importer.stop()
        os.chdir(ROOT)
        shutil.rmtree(workdir, ignore_errors=True)
    return tally


def one_case(args, seeds, number, workdir, cwd, importer, tally: Tally) -> None:
    name, case = build_case(seeds, args.seed, number)
    tally.tried += 1
    tally.by_seed[name] += 1
    root = workdir / f"case{number}"
    rng = case_rng(args.seed, -1 - number)
    signal.alarm(args.timeout)
    try:
        outcome = fuzz_contract.run_case(case, root)
        if importer is not None and outcome.out is not None:
            sources = "".join(
                (outcome.out / f).read_text("utf-8", "replace") for f in fuzz_contract.GENERATED
            )
            if fuzzing.MARK in sources or rng.randrange(args.import_every) == 0:
                outcome.violations += importer.check(outcome.out, root / "import-cwd")
    except CaseTimeout:
        tally.hangs.append((number, name, case.steps))
        save(args, case, number)
        return
    except Exception as err:  # noqa: BLE001 - the campaign's own failure, reported as a crash
        key = ("harness " + type(err).__name__, where(err.__traceback__))
        entry = tally.crashed.setdefault(key, {"count": 0, "cases": [], "example": None})
        entry["count"] += 1
        entry["cases"].append(number)
        entry["example"] = entry["example"] or (
            name,
            case.steps,
            _one_line(err),
            traceback.format_exc(),
        )
        return
    finally:
        signal.alarm(0)
        fuzz_cases.remove(root)
    tally.codes[outcome.code] += 1
    lines = outcome.stderr.splitlines()
    if outcome.code != 0 and lines:
        tally.rejected[category(lines[0])] += 1
        tally.several_lines += len(lines) > 1
    if os.listdir(cwd):
        outcome.violations.append(f"wrote into the working directory: {os.listdir(cwd)}")
        for entry in os.listdir(cwd):
            shutil.rmtree(cwd / entry, ignore_errors=True)
    if outcome.code == 70:
        signal.alarm(args.timeout)
        try:
            key, message, trace = crash_detail(case, root)
        finally:
            signal.alarm(0)
    elif outcome.violations:
        key = ("contract", re.sub(r"[:'\"(\[].*", "", outcome.violations[0])[:60])
        message, trace = "; ".join(outcome.violations), outcome.stderr
    else:
        return
    entry = tally.crashed.setdefault(key, {"count": 0, "cases": [], "example": None})
    entry["count"] += 1
    entry["cases"].append(number)
    if entry["example"] is None:
        entry["example"] = (name, case.steps, message, trace)
    save(args, case, number)


def save(args, case: fuzz_cases.Case, number: int) -> None:
    """With --save DIR: the case's files (regular files all: replay with --case for the rest)."""
    if not args.save:
        return
    target = Path(args.save) / f"case-{args.seed}-{number}"
    shutil.rmtree(target, ignore_errors=True)
    for rel, data in case.files.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)
    (target / "steps.txt").write_text(" + ".join(map(repr, case.steps)) + "\n")


def _worker(args, numbers, queue) -> None:
    queue.put(run_cases(args, numbers))


def run(args) -> int:
    if args.case is not None:
        numbers = [args.case]
    else:
        numbers = list(range(args.start, args.start + args.cases))
    start = time.perf_counter()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.jobs > 1 and len(numbers) > 1:
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        workers = [
            context.Process(target=_worker, args=(args, numbers[k :: args.jobs], queue))
            for k in range(args.jobs)
        ]
        for worker in workers:
            worker.start()
        STOP["workers"] = workers
        tally = Tally()
        for _ in workers:
            tally.merge(queue.get())
        for worker in workers:
            worker.join()
    else:
        tally = run_cases(args, numbers)
    elapsed = time.perf_counter() - start
    report(args, tally, elapsed)
    return 1 if tally.crashed or tally.hangs else 0


def report(args, tally: Tally, elapsed: float) -> None:
    n_crashed = sum(e["count"] for e in tally.crashed.values())
    print(f"graph2py fuzz campaign, seed {args.seed}, cases {args.start}..")
    if STOP["asked"]:
        print("stopped early (SIGTERM or SIGINT): the figures are of the cases that ran")
    print(f"command:      python bench/fuzz.py {' '.join(sys.argv[1:])}")
    seeds = ", ".join(f"{k} {v}" for k, v in sorted(tally.by_seed.items()))
    print(f"cases:        {tally.tried}  ({seeds})")
    codes = ", ".join(f"{code}: {count}" for code, count in sorted(tally.codes.items()))
    print(f"exits:        {codes}")
    print(f"converted:    {tally.codes[0]}  ({tally.imported} imported by a separate process)")
    rejected = sum(tally.rejected.values())
    print(f"rejected:     {rejected}  ({tally.several_lines} with more than one error line)")
    for cat, count in tally.rejected.most_common(args.categories):
        print(f"  {count:7d}  {cat}")
    if len(tally.rejected) > args.categories:
        rest = sum(c for _, c in tally.rejected.most_common()[args.categories :])
        print(f"  {rest:7d}  ... {len(tally.rejected) - args.categories} more categories")
    print(f"crashes:      {n_crashed}")
    for (kind, place), entry in sorted(tally.crashed.items(), key=lambda kv: -kv[1]["count"]):
        name, steps, message, _ = entry["example"]
        cases = ", ".join(map(str, sorted(entry["cases"])[:5]))
        print(f"  {entry['count']:7d}  {kind} at {place}: {message[:160]!r}")
        print(f"           e.g. case {cases} ({name}: {' + '.join(steps)!r})")
    print(f"hangs:        {len(tally.hangs)}  (over {args.timeout} s)")
    for number, name, steps in tally.hangs[:10]:
        print(f"           case {number} ({name}: {' + '.join(steps)!r})")
    if len(tally.hangs) > 10:
        print(f"           all: {' '.join(str(h[0]) for h in sorted(tally.hangs))}")
    if tally.crashed and args.tracebacks:
        print("\nfirst tracebacks:")
        for entry in list(tally.crashed.values())[: args.tracebacks]:
            print(entry["example"][3])
    rate = tally.tried / elapsed if elapsed else 0.0
    print(f"wall time:    {elapsed:.1f} s  ({rate:.1f} cases/s, {args.jobs} job(s))")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=100_000, help="number of mutants (100000)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (0)")
    p.add_argument("--start", type=int, default=0, help="first case number (0)")
    p.add_argument("--case", type=int, help="run only this case and print its traceback")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (1)")
    p.add_argument("--timeout", type=int, default=20, help="seconds per case (20)")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space cap (4096)")
    p.add_argument(
        "--import-every",
        type=int,
        default=50,
        help="import one in N converted cases without the marker (50; 0: import none)",
    )
    p.add_argument("--max-minutes", type=float, help="stop after this long, report the rate")
    p.add_argument("--save", metavar="DIR", help="write failing cases' files to DIR")
    p.add_argument("--no-memo", action="store_true", help="format every converted mutant")
    p.add_argument("--progress", type=int, default=0, help="report progress every N cases")
    p.add_argument("--categories", type=int, default=25, help="rejection categories to list")
    p.add_argument("--tracebacks", type=int, default=3, help="crash tracebacks to print")
    args = p.parse_args(argv)
    if args.case is not None:
        args.tracebacks = 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
