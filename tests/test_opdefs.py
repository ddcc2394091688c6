"""The shipped op-signature table agrees with the installed TensorFlow's registry.

The table is extracted once (`python -m codegen.opdefs`) so conversions need no TensorFlow
import. A newer TensorFlow may add ops or attributes; what must never drift is what the
generated TensorFlow-only layers pass: input names, list inputs, and the attributes raw_ops takes.
"""

from __future__ import annotations

from codegen import opdefs


def test_table_matches_installed_tensorflow():
    installed = opdefs.extract()
    shipped = opdefs._table()
    common = sorted(set(installed) & set(shipped))
    assert len(common) >= 0.95 * len(shipped)
    drift = [
        op
        for op in common
        if installed[op]["in"] != shipped[op]["in"]
        or [a[0] for a in installed[op]["attrs"]] != [a[0] for a in shipped[op]["attrs"]]
    ]
    assert drift == [], f"regenerate with `python -m codegen.opdefs`: {drift[:10]}"


def test_output_counts_follow_list_attributes():
    unpack = opdefs.get("Unpack")
    assert unpack.output_count({"num": 3}) == 3
    assert opdefs.get("TopKV2").output_count({}) == 2
    assert opdefs.get("Zeta").output_count({}) == 1
    assert opdefs.get("VarHandleOp").handles
