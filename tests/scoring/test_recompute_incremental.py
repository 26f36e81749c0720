"""Incremental recompute == full recompute, to the last bit, after every step of random change sequences.

Two levels:
- the engine (``rules.incremental.IncrementalRound``) on every shipped seed contest's rounds and on the
  tests' contest (tests/scoring/contests.py): values up and down, ties, missing values, new and leaving
  contestants, exclusions, adjustments (total, node, override, unknown component), judges' sheets (new,
  corrected, out of range, unknown criterion), tie decisions; after each step the incremental result is
  compared with ``score_field`` on the same field: digest, the whole result as a document, explanations;
- the scorer's ``Recomputer`` kept across a stream of events against a fresh one per step: digest, the rows it
  writes (every changed contestant's leaderboard row equals the fresh one's) and the reconciliation rows.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from liveboard.contracts.contest import Contest, JudgesNode, iter_nodes
from liveboard.contracts.contest_validate import load_contest
from liveboard.contracts.metrics import BASE_METRICS
from liveboard.paths import contests_dir
from services.scoring.contests import plan_for
from services.scoring.recompute import Recomputer, Versions
from services.scoring.rules import (
    AdjustmentInput,
    ContestantInputs,
    ExclusionInput,
    JudgeScoreInput,
    OrgInput,
    TieDecisionInput,
    score_field,
)
from services.scoring.rules.incremental import IncrementalRound
from services.scoring.state import ContestState
from tests.scoring import factory as f
from tests.scoring.contests import HOUR, T0, contest_doc, write_contest

SEEDS = ("harbin-2020", "hubei-2021", "jiangle-2022", "shaoyang-2023")
METRICS = [m for m in BASE_METRICS if not m.startswith("ledger_")]


def _contests(tmp_path: Path) -> list[Contest]:
    out = [load_contest(contests_dir() / f"{name}.yaml") for name in SEEDS]
    doc = contest_doc("incr", 12, groups=2)
    doc["stages"][0]["rounds"][0].pop("tie_break", None)
    doc["stages"][0]["rounds"][0]["ties"] = {"policy": "decide"}  # the operator orders every tie
    out.append(load_contest(write_contest(tmp_path, doc)))
    return out


class Field:
    """A random field for one round, changed a few contestants at a time (new objects for those only)."""

    def __init__(self, contest: Contest, round_id: str, rng: random.Random) -> None:
        self.contest, self.round_id, self.rng = contest, round_id, rng
        rnd = contest.round(round_id)
        self.groups = contest.round_groups(rnd)
        self.judges: list[JudgesNode] = []
        self.node_ids: list[str] = []
        for g in self.groups:
            for n in iter_nodes(contest.formula_for(rnd, g)):
                self.node_ids.append(n.id)
                if isinstance(n, JudgesNode) and n not in self.judges:
                    self.judges.append(n)
        self.registered = [c.id for c in contest.contestants if c.group in self.groups]
        self.inputs: dict[str, ContestantInputs] = {}
        self.decisions: list[TieDecisionInput] = []
        self.last: Any = None  # the last result (its ties are what a decision orders)
        self.serial = 0
        for cid in self.registered:
            self.inputs[cid] = self.fresh(cid)
        for _ in range(rng.randint(3, 12)):
            self.add()

    def _metrics(self, old: dict[str, int] | None) -> dict[str, int]:
        rng = self.rng
        out: dict[str, int] = {}
        for m in METRICS:
            if rng.random() < 0.04:
                continue  # missing
            if old is not None and m in old and rng.random() < 0.6:
                out[m] = max(0, old[m] + rng.randint(-50, 200))  # values go down as well as up
            else:
                out[m] = rng.choice((0, 5, 100, rng.randint(0, 20_000)))  # small values: ties
        return out

    def _sheets(self) -> list[JudgeScoreInput]:
        rng = self.rng
        out = []
        for node in self.judges:
            panel = sorted(node.panel) if node.panel else ["j1", "j2", "j3", "j4"]
            for judge in rng.sample(panel, rng.randint(0, len(panel))):
                for c in node.criteria:
                    if rng.random() < 0.1:
                        continue  # an incomplete sheet
                    pts = Decimal(rng.randint(0, int(c.max_points * 4))) / 4
                    if rng.random() < 0.03:
                        pts = c.max_points + 1  # out of range: rejected
                    out.append(
                        JudgeScoreInput(judge, c.id, pts, observed_at=rng.randint(0, 5), event_id=str(rng.random()))
                    )
            if rng.random() < 0.03:
                out.append(JudgeScoreInput("j1", "no-such-criterion", Decimal(1)))
        return out

    def _adjustments(self) -> list[AdjustmentInput]:
        rng = self.rng
        out = []
        for k in range(rng.choice((0, 0, 0, 1, 2))):
            component = rng.choice([None, None, *self.node_ids, "no-such-node"])
            kind = rng.choice(("delta", "delta", "override"))
            value = Decimal(rng.randint(-300, 300)) / 100 if kind == "delta" else Decimal(rng.randint(0, 5000)) / 100
            out.append(
                AdjustmentInput(f"a{k}", kind, value, component, observed_at=rng.randint(0, 3), event_id=f"e{k}")
            )
        return out

    def fresh(self, cid: str, old: ContestantInputs | None = None, group: str | None = None) -> ContestantInputs:
        rng = self.rng
        excluded = None
        if rng.random() < 0.05:
            excluded = ExclusionInput(f"x-{cid}", rng.choice(("round", "contest")), "违规", "主办方")
        org = None
        if group is not None:
            org = OrgInput(city="c1", district=rng.choice(("d1", "d2", "d3")), team=rng.choice(("t1", "t2")))
        return ContestantInputs(
            metrics=self._metrics(dict(old.metrics) if old is not None else None),
            judge_scores=self._sheets() if rng.random() < 0.7 else (old.judge_scores if old else ()),
            adjustments=self._adjustments(),
            group_id=group if group is not None else (old.group_id if old is not None else None),
            organisation=org if org is not None else (old.organisation if old is not None else None),
            excluded=excluded,
            platform=rng.choice([None, *self.contest.platforms]) if group is not None else None,
        )

    def add(self) -> None:
        self.serial += 1
        cid = f"new-{self.serial:04d}"
        self.inputs[cid] = self.fresh(cid, group=self.rng.choice(self.groups))

    def step(self) -> None:
        rng = self.rng
        cids = sorted(self.inputs)
        what = rng.random()
        if what < 0.1:
            return  # nothing changed
        if what < 0.15:  # the same values, a new object
            cid = rng.choice(cids)
            old = self.inputs[cid]
            self.inputs[cid] = ContestantInputs(
                dict(old.metrics),
                tuple(old.judge_scores),
                tuple(old.adjustments),
                old.group_id,
                old.organisation,
                old.excluded,
                old.platform,
            )
            return
        if what < 0.22 and len(cids) > 3:  # two contestants tie: the same values
            a, b = rng.sample(cids, 2)
            src = self.inputs[a]
            dst = self.inputs[b]
            self.inputs[b] = ContestantInputs(
                dict(src.metrics), tuple(src.judge_scores), (), dst.group_id, dst.organisation, None, dst.platform
            )
            return
        if what < 0.27:
            self.add()
            return
        if what < 0.31 and len(cids) > 4:  # someone leaves the field (e.g. not among a later round's entrants)
            del self.inputs[rng.choice(cids)]
            return
        if what < 0.4:  # an operator orders a tie of the last result (a tie decision), else some contestants
            ties = []
            if self.last is not None:
                for g in self.last.groups:
                    by_rank: dict[Any, list[str]] = {}
                    for r in g.rows:
                        if r.tied:
                            by_rank.setdefault(r.rank, []).append(r.contestant_id)
                    ties.extend((g.group_id, ids) for ids in by_rank.values() if len(ids) > 1)
            if ties:
                group, ids = rng.choice(ties)
                ids = list(reversed(ids))
            else:
                group, ids = rng.choice(self.groups), rng.sample(cids, min(len(cids), 2))
            self.decisions.append(
                TieDecisionInput(f"d{len(self.decisions)}", group, "awards", tuple(ids), "抽签", "主办方")
            )
            return
        for cid in rng.sample(cids, rng.randint(1, max(1, len(cids) // 4))):
            self.inputs[cid] = self.fresh(cid, self.inputs[cid])


def _same(a: Any, b: Any, field_: Field) -> None:
    assert a.digest() == b.digest()
    assert a.to_dict() == b.to_dict()
    assert [(r.contestant_id, r.what, r.reason) for r in a.rejected] == [
        (r.contestant_id, r.what, r.reason) for r in b.rejected
    ]
    for g in b.groups:
        for row in g.rows[:3]:
            assert a.explain(row.contestant_id).to_dict() == b.explain(row.contestant_id).to_dict()


def test_incremental_round_equals_a_full_recompute_after_every_step(tmp_path: Path) -> None:
    steps = 0
    for contest in _contests(tmp_path):
        for rnd in contest.rounds():
            for seed in range(2):
                rng = random.Random(f"{contest.id}/{rnd.id}/{seed}")
                fld = Field(contest, rnd.id, rng)
                inc = IncrementalRound(contest, rnd.id)
                for _ in range(12):
                    fld.step()
                    got = inc.update(fld.inputs, fld.decisions)
                    want = score_field(contest, rnd.id, dict(fld.inputs), tuple(fld.decisions))
                    _same(got, want, fld)
                    fld.last = want
                    steps += 1
                # the bookkeeping saw what happened: some calls reused the result, the field changed in parts
                assert inc.stats.calls == 12
    assert steps > 100


def test_incremental_round_reuses_the_result_and_the_prepared_sheets(tmp_path: Path) -> None:
    contest = load_contest(contests_dir() / "shaoyang-2023.yaml")
    rng = random.Random(5)
    fld = Field(contest, "city-final", rng)
    inc = IncrementalRound(contest, "city-final")
    first = inc.update(fld.inputs, ())
    assert inc.update(dict(fld.inputs), ()) is first  # nothing changed: the same result
    assert inc.stats.reused == 1
    judged = [cid for cid, inp in fld.inputs.items() if inp.judge_scores]
    assert judged
    prepared = {id(inp) for cache in inc.prepared.values() for _i, (inp, _d, _r) in cache.items()}
    assert all(id(fld.inputs[c]) in prepared for c in judged)
    cid = judged[0]
    fld.inputs[cid] = fld.fresh(cid, fld.inputs[cid])
    second = inc.update(fld.inputs, ())
    assert second is not first
    assert inc.last_changed == [cid]
    _same(second, score_field(contest, "city-final", dict(fld.inputs)), fld)


# ----------------------------------------------------------------------------------- the scorer's layer


def _events(rng: random.Random, n: int, t: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(n)
        cid = f"c{i:04d}"
        what = rng.random()
        if what < 0.7:
            gmv = rng.choice((0, 1000, rng.randint(0, 90_000)))
            out.append(
                f.live_snapshot(
                    "rinc", cid, t, gmv_fen=gmv, orders_paid=gmv // 1000, viewers_uv=1000, account_id=f"acct-{cid}"
                )
            )
        elif what < 0.85:
            out.append(
                f.judge_score(
                    "rinc",
                    cid,
                    t,
                    round_id="r1",
                    judge_id=f"j{rng.randint(1, 3)}",
                    criterion="pitch",
                    points=str(rng.randint(0, 10)),
                    max_points="10",
                )
            )
        else:
            kind = rng.choice(("delta", "override"))
            value = str(rng.randint(-5, 5)) if kind == "delta" else str(rng.randint(0, 90))
            out.append(
                f.adjustment(
                    "rinc", cid, t, round_id="r1", adjustment_id=f"adj-{rng.randint(1, 3)}", value=value, kind=kind
                )
            )
        t += rng.randint(1, 500)
    return out


def test_the_recomputer_kept_across_events_writes_what_a_fresh_one_computes(tmp_path: Path) -> None:
    n = 16
    path = write_contest(tmp_path, contest_doc("rinc", n, groups=2))
    contest = load_contest(path)
    st = ContestState(plan_for(contest))
    st.active_rounds.add("r1")
    kept = Recomputer(st, Versions(), 10)
    rng = random.Random(7)
    t = T0 + HOUR
    written: dict[str, list[Any]] = {}  # contestant -> the last leaderboard row the kept recomputer wrote
    for _ in range(40):
        for ev in _events(rng, n, t):
            st.apply(ev)
        t += 1000
        kept.mark({"r1"})
        (got,) = kept.run({0: t})
        want = Recomputer(st, Versions(), 10).compute("r1", {0: t})
        assert got.digest == want.digest
        for row in got.leaderboard_rows:
            written[row[3]] = row
        fresh = {row[3]: row for row in want.leaderboard_rows}
        assert written.keys() == fresh.keys()
        for cid, row in fresh.items():
            # everything but version, computed_at (columns 4, 5) and the digest of the version that wrote the
            # row (column 21: an unchanged row is not written again) is what a fresh recompute writes
            def content(r: list[Any]) -> list[Any]:
                return r[:4] + r[6:21] + r[22:]

            assert content(written[cid]) == content(row), cid
        assert got.update["groups"] == want.update["groups"]
    assert kept.fields["r1"].stats.calls == 40


@pytest.mark.parametrize("seed", [1])
def test_a_stale_preparation_would_be_caught(tmp_path: Path, seed: int) -> None:
    """The comparison can fail: an incremental round that keeps a contestant's old inputs is detected."""
    contest = load_contest(contests_dir() / "shaoyang-2023.yaml")
    fld = Field(contest, "city-final", random.Random(seed))
    inc = IncrementalRound(contest, "city-final")
    inc.update(fld.inputs, ())
    judged = next(cid for cid, inp in fld.inputs.items() if inp.judge_scores)
    old = fld.inputs[judged]
    node = fld.judges[0]
    sheets = [JudgeScoreInput(j, c.id, c.max_points) for j in ("j1", "j2", "j3", "j4") for c in node.criteria]
    fld.inputs[judged] = ContestantInputs(old.metrics, sheets, (), old.group_id, old.organisation, None, old.platform)
    stale = inc.update({**fld.inputs, judged: old}, ())
    with pytest.raises(AssertionError):
        _same(stale, score_field(contest, "city-final", dict(fld.inputs)), fld)


def test_integer_texts_equal_the_decimal_ones() -> None:
    """The row builder's integer formatting writes what the Decimal formatting wrote, sign and halves included."""
    from decimal import ROUND_HALF_UP

    from services.scoring.rules.exact import display, from_pico, pico_text

    rng = random.Random(3)
    values = [0, 1, -1, 5 * 10**9, -(5 * 10**9), 5 * 10**9 - 1, 10**12, -(10**12), 87_125_000_000_000]
    values += [rng.randint(-(10 ** rng.randint(0, 18)), 10 ** rng.randint(0, 18)) for _ in range(3000)]
    values += [rng.randint(-999, 999) * 10 ** rng.randint(0, 12) + 5 * 10 ** rng.randint(0, 11) for _ in range(3000)]
    for v in values:
        assert pico_text(v) == format(from_pico(v), "f")
        for d in (0, 1, 2, 3, 6, 8):
            assert display(v, d) == str(from_pico(v).quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP))
    assert display(87_125_000_000_000) == "87.13"
    assert display(-1, 2) == "-0.00"
