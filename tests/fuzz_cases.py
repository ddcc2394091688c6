"""Whole fuzz cases for the campaign (bench/fuzz.py) and tests/test_fuzz.py: a mutant GraphDef,
SavedModel or checkpoint, written to disk under names that may be hostile text, some of its files
replaced by things that are no regular files, converted by the command line in-process; then the
CLI's contract is checked (tests/fuzz_contract.py).

tests/fuzzing.py mutates one GraphDef; this module adds what lives around a graph: the other
input formats (signature keys, tags, signature tensor names, checkpoint keys and data), file
and directory names, file types (a FIFO, a link to /dev/zero, a directory where a file belongs,
an unreadable file, a dangling link, a socket) and the state of the output directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorboard.compat.proto import graph_pb2, meta_graph_pb2

import fuzzing

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"

# What a file of a case may be instead of a regular file.
SPECIAL = [
    "fifo",
    "dev-zero",
    "dev-urandom",
    "directory",
    "unreadable",
    "dangling",
    "loop",
    "socket",
]
# What `-o DIR` names when the CLI runs.
OUTPUTS = [
    "fresh",  # DIR does not exist
    "fresh",
    "fresh",
    "nested",  # DIR and its parent do not exist
    "existing",  # DIR holds an earlier model.py, load_weights.py and a file of the user's
    "file",  # DIR is a regular file
    "weights-dir",  # DIR/load_weights.py is a directory
    "model-fifo",  # DIR/model.py is a FIFO
    "dangling",  # DIR is a dangling symbolic link
    "hostile",  # DIR's name is hostile text
]


@dataclass
class Case:
    """Everything one run of `graph2py SOURCE -o DIR ...` sees."""

    files: dict[str, bytes]  # path relative to the case's root -> contents
    source: str  # the positional argument, relative to the root
    steps: list[str]  # what was done, for a readable report
    args: list[str] = field(default_factory=list)  # options that are no paths, `--k=v`
    checkpoint: str | None = None  # --checkpoint PREFIX, relative to the root
    special: dict[str, str] = field(default_factory=dict)  # path -> a kind in SPECIAL
    output: str = "fresh"  # a kind in OUTPUTS
    output_name: str = "out"


def file_name(text: str) -> str:
    """Hostile text that a file system takes as one name: no "/" or NUL, at most 200 bytes."""
    name = text.replace("/", "\u2215").replace("\0", "\u2400") or "empty"
    while len(name.encode()) > 200:
        name = name[:-1]
    return "x" + name if name in (".", "..") else name


def _hostile_name(rng, base: str) -> str:
    return file_name(fuzzing.hostile_text(rng, base))


# -- seeds of the other formats -----------------------------------------------------------------


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def format_seeds() -> dict[str, dict[str, bytes]]:
    """The converter's own fixtures (tests/fixtures/formats): SavedModels of TF2 and TF1, a
    sharded one, and a TF1 GraphDef with its checkpoint and .meta."""
    seeds = {
        name: _tree(FIXTURES / name)
        for name in ("tf2_savedmodel", "tf1_savedmodel", "sharded_savedmodel", "tf1_checkpoint")
    }
    graph = graph_pb2.GraphDef()  # parsed once: the text parser takes 0.1 s on it
    text_format.Parse(seeds["tf1_checkpoint"]["graph.pbtxt"].decode(), graph)
    seeds["tf1_checkpoint"]["graph.pb"] = graph.SerializeToString()
    return seeds


def _table_entries(data: bytes) -> dict[bytes, bytes] | None:
    from codegen.checkpoint import CheckpointError, CheckpointReader

    try:
        return CheckpointReader._read_table(data)
    except (CheckpointError, ValueError):
        return None


def _write_table(entries: dict[bytes, bytes]) -> bytes:
    from test_bounds import table  # the LevelDB table writer the bounds tests use

    return table(entries)


def rename_checkpoint_key(
    files: dict[str, bytes], index: str, rng, graph: graph_pb2.GraphDef | None
) -> str:
    """A variable's checkpoint key renamed to hostile text; with `graph`, mostly the variable's
    nodes too (its scope: `v`, `v/read`, `v/Assign`), so that the graph still converts and the
    key reaches the generated loader."""
    entries = _table_entries(files[index])
    keys = sorted(k for k in entries or () if k and not k.startswith(b"_CHECKPOINTABLE"))
    if not keys:
        return "rename_checkpoint_key (none)"
    old = rng.choice(keys)
    old_text = old.decode("utf-8", "replace")
    new = fuzzing.hostile_text(rng, old_text)
    entries[new.encode("utf-8", "surrogatepass")] = entries.pop(old)
    files[index] = _write_table(entries)
    if graph is not None and rng.random() < 0.8:
        fuzzing.rename_everywhere(graph.node, old_text, new, scope=True)
        return "rename_checkpoint_key (with the graph)"
    return "rename_checkpoint_key"


def _damage(files: dict[str, bytes], rng, names: list[str], steps: list[str]) -> None:
    name = rng.choice(names)
    if rng.random() < 0.5:
        files[name] = fuzzing.flip_bytes(files[name], rng)
        steps.append(f"flip_bytes {name}")
    else:
        files[name] = fuzzing.splice_bytes(files[name], rng)
        steps.append(f"splice_bytes {name}")


def _mutate_graph(graph: graph_pb2.GraphDef, rng, steps: list[str], rounds=(0, 1, 1, 2)) -> None:
    for _ in range(rng.choice(rounds)):
        fn = rng.choice(fuzzing.MUTATIONS)
        steps.append(fn(graph, rng) or fn.__name__)


def mutate_savedmodel(seed: dict[str, bytes], rng) -> Case:
    """A SavedModel with hostile signature keys, tags, signature tensor names or checkpoint keys,
    its graph mutated as a GraphDef is, its variables damaged, under a hostile directory name."""
    from codegen.formats import saved_model_class

    files = dict(seed)
    steps: list[str] = []
    args: list[str] = []
    saved = saved_model_class()()
    saved.ParseFromString(files["saved_model.pb"])
    meta = saved.meta_graphs[0]
    index = "variables/variables.index"
    for _ in range(rng.choice([1, 1, 2, 3])):
        r = rng.randrange(7) if rng.random() < 0.97 else 7
        if r in (0, 6):
            _mutate_graph(meta.graph_def, rng, steps, rounds=(1, 2))
        elif r == 1 and meta.signature_def:
            old = rng.choice(sorted(meta.signature_def))
            new = fuzzing.hostile_text(rng, old)
            meta.signature_def[new].CopyFrom(meta.signature_def[old])
            del meta.signature_def[old]
            if rng.random() < 0.7:
                args.append(f"--signature={new}")
            steps.append("signature key")
        elif r == 2:
            tag = fuzzing.hostile_text(rng, "serve")
            if rng.random() < 0.5:
                del meta.meta_info_def.tags[:]
            meta.meta_info_def.tags.append(tag)
            if rng.random() < 0.6:
                args.append(f"--tag={tag}")
            steps.append("tag")
        elif r == 3 and meta.signature_def:
            signature = meta.signature_def[rng.choice(sorted(meta.signature_def))]
            tensors = signature.inputs if rng.random() < 0.5 else signature.outputs
            if tensors:
                old = rng.choice(sorted(tensors))
                if rng.random() < 0.6:
                    tensors[fuzzing.hostile_text(rng, old)].CopyFrom(tensors[old])
                    del tensors[old]
                    steps.append("signature tensor key")
                else:
                    tensors[old].name = fuzzing.hostile_text(rng, tensors[old].name)
                    steps.append("signature tensor name")
        elif r == 4 and index in files:
            steps.append(rename_checkpoint_key(files, index, rng, meta.graph_def))
        elif r == 5:
            names = sorted(n for n in files if n.startswith("variables/"))
            _damage(files, rng, names, steps)
        else:
            steps.append("saved_model.pb as text")
            files.pop("saved_model.pb", None)
            files["saved_model.pbtxt"] = text_format.MessageToString(saved).encode()
            saved = None
            break
    if saved is not None:
        files["saved_model.pb"] = saved.SerializeToString(deterministic=True)
    folder = _hostile_name(rng, "saved") if rng.random() < 0.3 else "saved"
    return Case({f"{folder}/{k}": v for k, v in files.items()}, folder, steps, args)


def mutate_checkpoint(seed: dict[str, bytes], rng) -> Case:
    """A TF1 GraphDef (or its .meta) with its checkpoint: hostile variable names in both,
    hostile checkpoint keys alone, damaged index or data, a hostile prefix."""
    steps: list[str] = []
    graph = graph_pb2.GraphDef()
    graph.ParseFromString(seed["graph.pb"])
    files = {
        k: v for k, v in seed.items() if k.startswith("model.ckpt.") and k != "model.ckpt.meta"
    }
    use_meta = rng.random() < 0.3
    for _ in range(rng.choice([1, 1, 2])):
        r = rng.randrange(3)
        if r == 0:
            _mutate_graph(graph, rng, steps, rounds=(1, 2))
        elif r == 1:
            steps.append(rename_checkpoint_key(files, "model.ckpt.index", rng, graph))
        else:
            _damage(files, rng, sorted(files), steps)
    folder = _hostile_name(rng, "ckpt") if rng.random() < 0.2 else "ckpt"
    stem = _hostile_name(rng, "model.ckpt") if rng.random() < 0.3 else "model.ckpt"
    out = {f"{folder}/{stem}{k[len('model.ckpt'):]}": v for k, v in files.items()}
    if use_meta:
        meta = meta_graph_pb2.MetaGraphDef()
        meta.ParseFromString(seed["model.ckpt.meta"])
        meta.graph_def.CopyFrom(graph)
        out[f"{folder}/{stem}.meta"] = meta.SerializeToString(deterministic=True)
        return Case(out, f"{folder}/{stem}.meta", ["meta"] + steps)
    text = rng.random() < 0.5
    name = f"graph{'.pbtxt' if text else '.pb'}"
    out[name] = text_format.MessageToString(graph).encode() if text else graph.SerializeToString()
    return Case(out, name, steps, checkpoint=f"{folder}/{stem}")


def graph_case(mutant: fuzzing.Mutant, rng) -> Case:
    """A GraphDef mutant under its own name (now and then hostile text), with its --inputs and
    --outputs."""
    name = "mutant"
    if rng.random() < 0.15:
        name = _hostile_name(rng, "graph")
    args = []
    for option, specs in (("--inputs", mutant.inputs), ("--outputs", mutant.outputs)):
        if specs:
            args.append(f"{option}={','.join(specs)}")
    source = name + mutant.suffix
    return Case({source: mutant.data}, source, list(mutant.steps), args)


def make_case(graph_seeds: dict, other_seeds: dict, rng) -> tuple[str, Case]:
    """(seed name, case): mostly a GraphDef mutant, else a SavedModel or a checkpoint; then, now
    and then, one of its paths made no regular file, and the output directory made awkward."""
    r = rng.random()
    if r < 0.8:
        name = rng.choice(sorted(graph_seeds))
        case = graph_case(fuzzing.mutate(graph_seeds[name], rng), rng)
    elif r < 0.92:
        name = rng.choice([n for n in sorted(other_seeds) if n.endswith("savedmodel")])
        case = mutate_savedmodel(other_seeds[name], rng)
    else:
        name = "tf1_checkpoint"
        case = mutate_checkpoint(other_seeds[name], rng)
    if rng.random() < 0.05:
        paths = sorted(case.files)
        path = rng.choice(paths)
        if "/" in path and rng.random() < 0.3:
            path = path.rsplit("/", 1)[0]  # a directory: variables/, the SavedModel itself
        kind = rng.choice(SPECIAL)
        case.special[path] = kind
        case.steps.append(f"{path} is {kind}")
    if rng.random() < 0.2:
        case.output = rng.choice(OUTPUTS[3:])
        if case.output == "hostile":
            case.output_name = _hostile_name(rng, "out")
        case.steps.append(f"-o {case.output}")
    return name, case


# -- writing a case to disk ---------------------------------------------------------------------


def materialise(case: Case, root: Path) -> tuple[list[str], Path]:
    """Write the case under `root` (which must not exist); (argv for cli.main, the -o DIR)."""
    root.mkdir(parents=True)
    for rel, data in case.files.items():
        replaced = [s for s, kind in case.special.items() if kind != "unreadable"]
        if any(rel == s or rel.startswith(s + "/") for s in replaced):
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for rel, kind in case.special.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        make_special(path, kind)
    out = root / case.output_name
    if case.output == "nested":
        out = root / "missing" / "deeper" / case.output_name
    prepare_output(out, case.output)
    argv = [str(root / case.source), "-o", str(out), *case.args]
    if case.checkpoint is not None:
        argv.append(f"--checkpoint={root / case.checkpoint}")
    return argv, out


def make_special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    elif kind == "dev-urandom":
        os.symlink("/dev/urandom", path)
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_bytes(b"x")
    elif kind == "unreadable":
        if not path.exists():
            path.write_bytes(b"")
        path.chmod(0)
    elif kind == "dangling":
        os.symlink(path.parent / "no such file", path)
    elif kind == "loop":
        os.symlink(path.name, path)
    elif kind == "socket":
        # a socket's path may be at most ~107 bytes: bind from inside its directory
        here = os.getcwd()
        try:
            os.chdir(path.parent)
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(path.name)
        except OSError:
            os.mkfifo(path)  # a name too long even so: a FIFO, no regular file either
        finally:
            os.chdir(here)
    else:
        raise ValueError(kind)


def prepare_output(out: Path, kind: str) -> None:
    if kind in ("fresh", "hostile", "nested"):
        return
    if kind == "existing":
        out.mkdir()
        (out / "model.py").write_text("# an earlier model.py\n")
        (out / "load_weights.py").write_text("# an earlier load_weights.py\n")
        (out / "notes.txt").write_text("the user's own file\n")
    elif kind == "file":
        out.write_text("a file where the output directory should be\n")
    elif kind == "weights-dir":
        out.mkdir()
        (out / "model.py").write_text("# an earlier model.py\n")
        (out / "load_weights.py").mkdir()
    elif kind == "model-fifo":
        out.mkdir()
        os.mkfifo(out / "model.py")
    elif kind == "dangling":
        os.symlink(out.parent / "nowhere", out)
    else:
        raise ValueError(kind)


def remove(root: Path) -> None:
    """rmtree, after giving back the permissions an "unreadable" case took away."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                if not stat.S_ISLNK(os.lstat(path).st_mode):
                    os.chmod(path, 0o700)
            except OSError:
                pass
    shutil.rmtree(root, ignore_errors=True)
