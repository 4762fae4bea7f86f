"""studies/second_call.py: its table of call 2 against call 3 from dumps written by hand."""

import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from test_instructions import DUMP  # noqa: E402

from studies import second_call  # noqa: E402


def test_the_table_gives_each_case_and_the_largest_difference_by_size(tmp_path):
    side = tmp_path / "v1"
    side.mkdir()
    own = 415  # the hand-written dump's instructions besides the replaced line
    for n, (name, cost) in enumerate([("big#2", 200_000_000 + 2000), ("big#3", 200_000_000),
                                      ("small#2", 5_000 + 100), ("small#3", 5_000)], start=1):
        (side / f"callgrind.9.{n}").write_text(
            DUMP.replace("ops.ReLU.time_op('dim=2', 'mlx_cpu')#1", name).replace("0 700", f"0 {cost - own}"))
    got = second_call.read(str(side))
    assert got == {"big": {2: 200_002_000, 3: 200_000_000}, "small": {2: 5_100, 3: 5_000}}
    text = "\n".join(second_call.table(str(tmp_path)))
    assert "v1: 2 cases" in text and "+2.000%" in text and "+0.001%" in text
    assert "cases of 100,000,000 instructions or more: largest difference 0.001%" in text
    assert "cases of 1,000,000 instructions or more: largest difference 0.001%" in text
