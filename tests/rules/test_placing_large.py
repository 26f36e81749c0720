"""Large ties: a contest's start, where every contestant without data ties at zero.

A 20,000-way tie must be placed exactly (competition places, awards, advancement) with a note per row
that stays short: it names the first ``TIE_NOTE_PEERS`` peers in display order (by id) and the count of all
of them, instead of every peer on every row (O(k²): minutes and gigabytes at 10,000). Nothing here times
the wall clock; the quadratic form of these notes would make the module take minutes, not fail a timer.
Small ties keep their exact text (tests/rules/test_ties.py asserts it).
"""

from __future__ import annotations

import random
from typing import Any

from field_builders import make_contest, metric

from liveboard.contracts.contest import Contest
from services.scoring.rules import ContestantInputs, score_field
from services.scoring.rules.placing import TIE_NOTE_PEERS, peer_texts, tie_notes

N = 20_000
AWARDS = [
    {"id": "first", "name": "一等奖", "count": 1},
    {"id": "second", "name": "二等奖", "count": 2},
    {"id": "third", "name": "三等奖", "count": 1},
]  # places 1 | 2–3 | 4


def _contest(ties: dict[str, Any], **extra: Any) -> Contest:
    return make_contest(metric("total", "likes", {"method": "raw"}), ties=ties, awards=AWARDS, **extra)


def _field(values: dict[str, int], **more: dict[str, int]) -> dict[str, ContestantInputs]:
    return {
        cid: ContestantInputs({"likes": v, **{k: m[cid] for k, m in more.items()}}, group_id="g")
        for cid, v in values.items()
    }


def _start_of_contest() -> dict[str, int]:
    """Two leaders and N contestants without data (0 likes), in a shuffled input order."""
    likes = {"lead-a": 10, "lead-b": 9, **{f"c{i:05d}": 0 for i in range(N)}}
    items = list(likes.items())
    random.Random(7).shuffle(items)
    return dict(items)


def test_a_20000_way_tie_is_placed_shared_with_bounded_notes():
    likes = _start_of_contest()
    result = score_field(_contest({"policy": "share"}, advancement={"top": 3}), "r", _field(likes))
    rows = result.group("g").rows
    assert [(r.contestant_id, r.rank, r.award, r.tied) for r in rows[:3]] == [
        ("lead-a", 1, "first", False),
        ("lead-b", 2, "second", False),
        ("c00000", 3, "second", True),
    ]
    tied = rows[2:]
    assert len(tied) == N
    # display order by id; every one at place 3, sharing the better award (二等奖) and advancing (share)
    assert [r.contestant_id for r in tied] == [f"c{i:05d}" for i in range(N)]
    assert {(r.rank, r.award, r.tied, r.pending, r.advances) for r in tied} == {(3, "second", True, False, True)}
    # the first rows name the other first five; every row past them names c00000..c00004; count = all peers
    assert rows[2].notes == [
        "并列第3名（与 c00001、c00002、c00003、c00004、c00005 等 19,999 名）/ tied for place 3 with 19,999 others"
    ]
    assert rows[4].notes == [
        "并列第3名（与 c00000、c00001、c00003、c00004、c00005 等 19,999 名）/ tied for place 3 with 19,999 others"
    ]
    tail = "并列第3名（与 c00000、c00001、c00002、c00003、c00004 等 19,999 名）/ tied for place 3 with 19,999 others"
    assert rows[2 + TIE_NOTE_PEERS].notes == [tail]
    assert rows[-1].notes == [tail]
    assert max(len(n) for r in rows for n in r.notes) < 120
    assert rows[0].notes == [] and rows[1].notes == []


def test_a_20000_way_tie_under_decide_is_pending_across_the_boundary():
    result = score_field(_contest({"policy": "decide"}), "r", _field(_start_of_contest()))
    tied = result.group("g").rows[2:]
    # places 3..20,002 straddle 二等奖 (place 3) and nothing (from 5): all pending, no award
    assert {(r.rank, r.award, r.tied, r.pending) for r in tied} == {(3, None, True, True)}
    assert tied[-1].notes == [
        "并列第3名（与 c00000、c00001、c00002、c00003、c00004 等 19,999 名）/ tied for place 3 with 19,999 others",
        "待定：并列第3名跨越奖项界限（二等奖/无奖项），待组委会裁定 / pending: tie across an award boundary awaits "
        "a tie decision",
    ]


def test_equal_totals_split_by_keys_note_is_bounded_too():
    """10,000 equal totals that a tie-break key splits in two halves: the 总分与…相同 note and the two
    residual ties' notes name five peers each (the engine's own note, not only placing's)."""
    n = 10_000
    ids = [f"c{i:05d}" for i in range(n)]
    ties = {"policy": "tie_break", "keys": ["shares"], "then": "share"}
    field = _field(dict.fromkeys(ids, 5), shares={cid: i % 2 for i, cid in enumerate(ids)})
    result = score_field(_contest(ties), "r", field)
    rows = result.group("g").rows
    odd = [r for r in rows if r.rank == 1]
    even = [r for r in rows if r.rank == n // 2 + 1]
    assert len(odd) == len(even) == n // 2
    assert odd[0].contestant_id == "c00001" and even[0].contestant_id == "c00000"
    # the engine's note lists the peers in field order (c00000 first), the tie note in display order
    assert rows[-1].notes == [
        "总分与 c00000、c00001、c00002、c00003、c00004 等 9,999 名 相同，按决胜项（shares）排名"
        " / equal total, placed by the tie-break keys",
        f"并列第{n // 2 + 1}名（与 c00000、c00002、c00004、c00006、c00008 等 4,999 名，决胜项无法区分）"
        f"/ tied for place {n // 2 + 1} with 4,999 others",
    ]
    assert max(len(x) for r in rows for x in r.notes) < 140


def test_the_cut_is_at_more_than_five_peers():
    six = ["a", "b", "c", "d", "e", "f"]  # five peers each: all named, today's text
    assert tie_notes(six, 2)[0] == "并列第2名（与 b、c、d、e、f）/ tied for place 2"
    assert tie_notes(six, 2)[5] == "并列第2名（与 a、b、c、d、e）/ tied for place 2"
    seven = [*six, "g"]  # six peers each: the first five and the count
    notes = tie_notes(seven, 1, "，决胜项无法区分")
    assert notes[0] == "并列第1名（与 b、c、d、e、f 等 6 名，决胜项无法区分）/ tied for place 1 with 6 others"
    assert notes[3] == "并列第1名（与 a、b、c、e、f 等 6 名，决胜项无法区分）/ tied for place 1 with 6 others"
    assert notes[5] == notes[6]
    assert notes[6] == "并列第1名（与 a、b、c、d、e 等 6 名，决胜项无法区分）/ tied for place 1 with 6 others"
    assert peer_texts(["x", "y"]) == (["y", "x"], False)


def test_the_large_tie_result_is_deterministic_whatever_the_input_order():
    likes = _start_of_contest()
    contest = _contest({"policy": "share"})
    first = score_field(contest, "r", _field(likes))
    reordered = dict(sorted(likes.items(), reverse=True))
    second = score_field(contest, "r", _field(reordered))
    assert first.digest() == second.digest()
    assert first.row("c19999").notes == second.row("c19999").notes
