"""Every option that shapes a model, as one value.

`Options` is parsed once from the command line (`add_arguments` defines the flags for every
command that builds a model: convert, inspect, check), passed whole to the stages that need it
(formats.py reads the source with signature, tag and checkpoint; the passes take inputs,
outputs, sets and io_layout; pipeline.load sizes the constant budget with max_constant_mb), written
into model.py's header as its regenerate command (`arguments`), and read back from that header
(`from_header`) by the language server's Regenerate and Check and by `graph2py check --fresh`,
so a model is rebuilt as it was made. Nothing here imports the converter: `graph2py --help`
stays instant.
"""

from __future__ import annotations

import argparse
import glob
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .passes.prune import TensorSpec

IO_LAYOUTS = ("keep", "nhwc")
# The regenerate line templates/model.py.j2 writes (third line of the header); before headers
# recorded the source relative to the model's directory it read "regenerate with `... -o DIR`".
_REGENERATE = re.compile(
    r"^# Edit freely; regenerate (?:in this directory )?with `graph2py (.*) -o (?:\.|DIR)`\.$"
)


@dataclass(frozen=True)
class Options:
    """What the user asked for. inputs/outputs None means the defaults: a signature's tensors,
    else the graph's placeholders and sinks (passes/prune.py)."""

    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None
    signature: str | None = None  # SavedModel signature key
    tag: str | None = None  # SavedModel meta graph tags, comma-separated
    checkpoint: str | None = None  # a GraphDef's (or meta graph's) checkpoint prefix
    io_layout: str = "keep"  # an NCHW graph's 4-D inputs and outputs: "keep" or "nhwc"
    # MiB of constants decoding and folding may make (budget.py); None: in proportion to the
    # input's size
    max_constant_mb: int | None = None
    # placeholders folded to constants, (name, value as typed), in the order given: a training
    # switch or a keep_prob fixed for inference (passes/prune.py checks and applies them)
    sets: tuple[tuple[str, str], ...] = ()
    # one flat build_model, as before blocks were factored into functions (codegen/blocks.py)
    flat: bool = False

    def __post_init__(self):
        from .errors import UsageError

        if self.io_layout not in IO_LAYOUTS:
            raise UsageError(f"io_layout must be one of {', '.join(IO_LAYOUTS)}")
        if self.max_constant_mb is not None and self.max_constant_mb < 1:
            raise UsageError("max_constant_mb must be a positive number of MiB")

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: Path | None = None) -> Options:
        """From a namespace `add_arguments` filled. A checkpoint is taken relative to `base`
        (the header records it relative to the generated file's directory)."""
        checkpoint = args.checkpoint
        if checkpoint and base is not None:
            checkpoint = str(base / checkpoint)
        return cls(
            inputs=split_tensors(args.inputs),
            outputs=split_tensors(args.outputs),
            signature=args.signature,
            tag=args.tag,
            checkpoint=checkpoint,
            io_layout=args.io_layout,
            max_constant_mb=args.max_constant_mb,
            sets=split_sets(args.set),
            flat=args.flat,
        )

    def arguments(self, base: str | Path | None = None) -> list[str]:
        """The options as the header's regenerate command writes them, shell-quoted (tensor
        names are the graph's): only those given. The checkpoint relative to `base`, the
        directory the command is run in (the generated files' own, for the header: from_header
        reads it back from there), or by its file name."""
        given = {"--inputs": self.inputs, "--outputs": self.outputs}
        return [
            *(f"{flag} {shlex.quote(','.join(map(str, s)))}" for flag, s in given.items() if s),
            *(
                f"{flag} {shlex.quote(value)}"
                for flag, value in (("--signature", self.signature), ("--tag", self.tag))
                if value
            ),
            *(
                [f"--checkpoint {shlex.quote(self._checkpoint_from(base))}"]
                if self.checkpoint
                else []
            ),
            *([f"--io-layout {self.io_layout}"] if self.io_layout != "keep" else []),
            *([f"--max-constant-mb {self.max_constant_mb}"] if self.max_constant_mb else []),
            *(f"--set {shlex.quote(f'{name}={value}')}" for name, value in self.sets),
            *(["--flat"] if self.flat else []),
        ]

    def _checkpoint_from(self, base: str | Path | None) -> str:
        if base is None:
            return Path(self.checkpoint).name
        from .header import record_path

        return record_path(self.checkpoint, base)

    def set_feeds(self) -> dict[str, object]:
        """The --set placeholders as TensorFlow is fed them to run the source graph (`check`):
        {tensor: value}, the session casting each to its placeholder's dtype."""
        return {_tensor(name): _fed(value) for name, value in self.sets}

    @classmethod
    def from_header(
        cls, text: str, directory: str | Path, source: str | Path | None = None
    ) -> Options | None:
        """The options a generated model.py was made with, from the regenerate command in its
        header, run in `directory`, the model's own: a checkpoint is taken relative to it.
        Headers of earlier versions named the checkpoint by its file name, beside `source`, the
        graph: there when it is not found in `directory`. None when the text has no such line
        or a hand edit made it unreadable."""
        found = next((m for m in map(_REGENERATE.match, text.splitlines()[:4]) if m), None)
        if found is None:
            return None
        parser = argparse.ArgumentParser(prog="graph2py", add_help=False)
        parser.add_argument("source")
        add_arguments(parser)
        try:
            args = parser.parse_args(shlex.split(found.group(1)))
        except (ValueError, SystemExit):
            return None
        options = cls.from_args(args, Path(directory))
        if options.checkpoint and source is not None and not _prefix_exists(options.checkpoint):
            beside = Path(source).parent / args.checkpoint
            if _prefix_exists(beside):
                return replace(options, checkpoint=str(beside))
        return options


def _prefix_exists(prefix: str | Path) -> bool:
    """A checkpoint prefix names files (`PREFIX.index`, `PREFIX.data-*`) or a directory."""
    return bool(glob.glob(glob.escape(str(prefix)) + "*"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The shaping options, defined once for every command that builds a model."""
    parser.add_argument(
        "--signature", metavar="KEY", help="SavedModel signature (default: serving_default)"
    )
    parser.add_argument(
        "--tag",
        metavar="TAGS",
        help="SavedModel meta graph tag set, comma-separated (default: serve)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="PREFIX",
        help="read the GraphDef's variables from this checkpoint (PREFIX.index, PREFIX.data-*)",
    )
    parser.add_argument(
        "--inputs",
        metavar="TENSORS",
        help="comma-separated input tensors, e.g. 'input:0[1,224,224,3]'",
    )
    parser.add_argument(
        "--outputs", metavar="TENSORS", help="comma-separated output tensors, e.g. 'logits:0'"
    )
    parser.add_argument(
        "--io-layout",
        choices=IO_LAYOUTS,
        default="keep",
        help="an NCHW graph's 4-D inputs and outputs: keep NCHW (default) or take and give NHWC",
    )
    parser.add_argument(
        "--max-constant-mb",
        metavar="N",
        type=_positive_int,
        help="MiB of constants decoding and constant folding may make (default: 16 times the "
        "input's size, at least 64)",
    )
    parser.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        help="fold placeholder NAME to the constant VALUE of its dtype, e.g. --set "
        "is_train=false --set keep_prob=1.0 (repeatable): training branches resolve statically",
    )
    parser.add_argument(
        "--flat",
        action="store_true",
        help="write build_model as one flat function: no block functions, no loops",
    )


def split_sets(given: list[str] | None) -> tuple[tuple[str, str], ...]:
    """`NAME=VALUE` texts as (name, value) pairs. The value is checked against the
    placeholder's dtype once the graph is read (passes/prune.apply_sets); here only the form,
    so that a mistake is one error line (exit 2), not argparse's usage text."""
    from .errors import UsageError

    pairs = []
    for text in given or ():
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UsageError(f"--set {text!r}: expected NAME=VALUE, e.g. --set is_train=false")
        if any(name == seen for seen, _ in pairs):
            raise UsageError(f"--set {name}: given twice")
        pairs.append((name, value))
    return tuple(pairs)


def _tensor(name: str) -> str:
    from .graph import tensor_ref

    return tensor_ref(name)


def _fed(text: str) -> object:
    """true/false (and the other spellings passes/prune.py takes) as a bool, a whole number as
    an int, else a float, else the text (a string placeholder's)."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "false", "no", "off"):
        return lowered in ("true", "yes", "on")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.encode("utf-8")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def split_tensors(text: str | None) -> list[TensorSpec] | None:
    """Comma-separated specs; commas inside a [shape] do not split."""
    if not text:
        return None
    from .passes.prune import TensorSpec

    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [TensorSpec.parse(p) for p in parts if p.strip()]
