"""Training switches: the placeholders TF1 code fed a different value while training
(`is_train`, `keep_prob`), and the value each takes for inference. `graph2py inspect` lists
them with the `--set` that fixes each (summary.py); an error about such an input suggests it.
"""

from __future__ import annotations

from ..graph import Node

# Names TF1 code gave its switches, lower-cased, without '_': the inference value. A bool
# scalar placeholder is a switch whatever its name (false).
_VALUES = {
    "istrain": "false",
    "istraining": "false",
    "training": "false",
    "phasetrain": "false",
    "train": "false",
    "learningphase": "0",
    "keepprob": "1.0",
    "keepprobability": "1.0",
    "dropoutkeepprob": "1.0",
    "dropout": "0.0",
    "dropoutrate": "0.0",
}
_NUMBERS = ("float16", "float32", "float64", "int32", "int64")


def inference_value(node: Node) -> str | None:
    """The --set VALUE that fixes `node` for inference, if it is a switch: a Placeholder that is
    a scalar (or declared without a shape), bool, or named as TF1 code named keep_prob and its
    kind (a number of the right kind: learning_phase is an integer, keep_prob a float)."""
    if node.op != "Placeholder" or node.attrs.get("shape") not in ((), None):
        return None
    dtype = node.attrs.get("dtype", "float32")
    if dtype == "bool":
        return "false"
    value = _VALUES.get(node.name.rsplit("/", 1)[-1].lower().replace("_", ""))
    if value is None or dtype not in _NUMBERS or value == "false":
        return None
    if dtype.startswith("int") != value.isdigit():
        return None
    return value
