"""A long fuzzing campaign: mutate valid GraphDefs, convert each mutant in-process, tally.

    python bench/fuzz.py --cases 100000 --seed 0
    python bench/fuzz.py --seed 0 --case 4711      # replay one case, with its traceback

The mutations are tests/fuzzing.py's, shared with tests/test_fuzz.py, driven here by a plain
`random.Random` per case (hypothesis's bookkeeping costs more than most conversions). Case i of
seed S always builds the same mutant, so any crash can be replayed with `--case i`.

Every mutant must convert or be rejected with a `Graph2PyError`; anything else is a crash and
makes the script exit 1. A case that runs longer than `--timeout` seconds counts as a crash too
(an endless loop is a bug), and the address space is capped (`--memory-mb`) so that a runaway
allocation shows as MemoryError rather than taking the machine down.

Formatting (libcst tidying and black) is by far the slowest step and a pure function of the
rendered text, and most mutants that convert render the same text as an earlier one (a changed
weight value, a dropped unused node) but for the file's sha256 in the header comment. The two
functions are memoised on their input with the digest factored out, so each distinct source is
still formatted once; `--no-memo` turns that (and the cached Jinja environment) off.
"""

from __future__ import annotations

import argparse
import functools
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import fuzzing  # noqa: E402
from codegen.errors import Graph2PyError  # noqa: E402


class CaseTimeout(Exception):
    """Raised by SIGALRM inside a case that ran too long."""


def _alarm(signum, frame):
    raise CaseTimeout("case ran longer than the time limit")


def case_rng(seed: int, case: int) -> random.Random:
    return random.Random(f"{seed}:{case}")


def build_mutant(seeds: dict, seed: int, case: int) -> tuple[str, fuzzing.Mutant]:
    rng = case_rng(seed, case)
    name = rng.choice(sorted(seeds))
    return name, fuzzing.mutate(seeds[name], rng)


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
    """Cache tidy/format_source (see the module docstring) and the Jinja environment, which
    `render` rebuilds, templates compiled anew, on every call."""
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


def run(args) -> int:
    seeds = fuzzing.seeds()
    if not args.no_memo:
        memoise_formatting()
    if args.memory_mb:
        limit = args.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    workdir = Path(tempfile.mkdtemp(prefix="graph2py-fuzz-"))
    cases = [args.case] if args.case is not None else range(args.start, args.start + args.cases)

    converted, rejected, crashed = 0, Counter(), {}
    by_seed = Counter()
    tried = 0
    start = time.perf_counter()
    deadline = start + args.max_minutes * 60 if args.max_minutes else None
    for case in cases:
        if deadline and time.perf_counter() > deadline:
            break
        name, mutant = build_mutant(seeds, args.seed, case)
        tried += 1
        by_seed[name] += 1
        signal.alarm(args.timeout)
        try:
            fuzzing.convert_mutant(mutant, workdir)
            converted += 1
        except Graph2PyError as err:
            rejected[fuzzing.category(err)] += 1
        except BaseException as err:  # noqa: BLE001 - every other exception is the finding
            if isinstance(err, KeyboardInterrupt):
                raise
            key = (type(err).__name__, where(err.__traceback__))
            entry = crashed.setdefault(key, {"count": 0, "cases": [], "example": None})
            entry["count"] += 1
            entry["cases"].append(case)
            if entry["example"] is None:
                entry["example"] = (name, mutant.steps, _one_line(err), traceback.format_exc())
            if args.save:
                Path(args.save).mkdir(parents=True, exist_ok=True)
                (Path(args.save) / f"crash-{args.seed}-{case}{mutant.suffix}").write_bytes(
                    mutant.data
                )
        finally:
            signal.alarm(0)
        if args.progress and tried % args.progress == 0:
            rate = tried / (time.perf_counter() - start)
            print(f"... {tried} cases, {rate:.0f}/s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    report(args, tried, converted, rejected, crashed, by_seed, elapsed)
    return 1 if crashed else 0


def report(args, tried, converted, rejected, crashed, by_seed, elapsed) -> None:
    n_rejected = sum(rejected.values())
    n_crashed = sum(e["count"] for e in crashed.values())
    print(f"graph2py fuzz campaign, seed {args.seed}")
    print(f"cases tried:  {tried}  ({', '.join(f'{k} {v}' for k, v in sorted(by_seed.items()))})")
    print(f"converted:    {converted}")
    print(f"rejected:     {n_rejected}  (Graph2PyError)")
    for cat, count in rejected.most_common(args.categories):
        print(f"  {count:7d}  {cat}")
    if len(rejected) > args.categories:
        rest = sum(c for _, c in rejected.most_common()[args.categories :])
        print(f"  {rest:7d}  ... {len(rejected) - args.categories} more categories")
    print(f"crashed:      {n_crashed}")
    for (kind, place), entry in sorted(crashed.items(), key=lambda kv: -kv[1]["count"]):
        name, steps, message, _ = entry["example"]
        cases = ", ".join(map(str, entry["cases"][:5]))
        print(f"  {entry['count']:7d}  {kind} at {place}: {message[:120]}")
        print(f"           e.g. case {cases} ({name}: {' + '.join(steps)})")
    if crashed and args.tracebacks:
        print("\nfirst tracebacks:")
        for entry in list(crashed.values())[: args.tracebacks]:
            print(entry["example"][3])
    rate = tried / elapsed if elapsed else 0.0
    print(f"run time:     {elapsed:.1f} s  ({rate:.1f} cases/s)")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=100_000, help="number of mutants (100000)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (0)")
    p.add_argument("--start", type=int, default=0, help="first case number (0)")
    p.add_argument("--case", type=int, help="run only this case and print its traceback")
    p.add_argument("--timeout", type=int, default=20, help="seconds per case (20)")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space cap (4096)")
    p.add_argument("--max-minutes", type=float, help="stop after this long, report the rate")
    p.add_argument("--save", metavar="DIR", help="write crashing mutants to DIR")
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
