"""The ops that carry a graph rather than compute: constants, placeholders, calls, identities."""

from __future__ import annotations

from .record import op, unary
from .signature import Attr

# Constants reads a Const node's value (and its recipe) itself; the RNN step check evaluates it.
op(
    "Const",
    attrs={"value": Attr("tensor", required=True), "dtype": Attr("type")},
    kernel=lambda node: node.attrs["value"],
    folds=False,
    why="not folded: a constant already",
)
op("Placeholder", attrs={"dtype": Attr("type"), "shape": Attr("shape")})
op("PlaceholderWithDefault", attrs={"dtype": Attr("type"), "shape": Attr("shape")})
op("PartitionedCall", attrs={"f": Attr("func", required=True)})
op("StatefulPartitionedCall", attrs={"f": Attr("func", required=True)})
op("NoOp")


def _identity(x):
    return x


# Ops that forward their input. prune.py bypasses them before patterns run; folding one would
# only change what is constant ahead of that (a PlaceholderWithDefault read through one would
# become a fixed setting). The RNN step check evaluates them.
_FORWARDS = "not folded: prune.py bypasses identities"
unary("Identity", _identity, channels_last=True, folds=False, why=_FORWARDS)
unary("StopGradient", _identity, "stop_gradient", folds=False, why=_FORWARDS)
unary("Snapshot", _identity, folds=False, why=_FORWARDS)
unary("PreventGradient", _identity, folds=False, why=_FORWARDS)
unary("EnsureShape", _identity, folds=False, why=_FORWARDS)
op("IdentityN", list_min=1)
