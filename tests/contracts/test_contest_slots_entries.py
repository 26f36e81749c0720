"""The contest file's live slots and registered entries: what is accepted and what validation reports."""

from __future__ import annotations

import copy
from typing import Any

from liveboard.contracts.contest_validate import load_contest
from tests.contracts.test_contest_validation import BASE, _check
from tests.scoring.test_slots_entries import HARBIN, SHAOYANG, at

R = "stages[0].rounds[0]"


def _with(slots: Any = None, entries: Any = None) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    rnd = data["stages"][0]["rounds"][0]
    if slots is not None:
        rnd["slots"] = slots
    if entries is not None:
        rnd["entries"] = entries
    return data


def test_a_valid_schedule_and_entry_list() -> None:
    slots = {"schedule": {"c0": {"start": "2024-03-02T09:00:00+08:00", "end": "2024-03-02T10:00:00+08:00"}}}
    entries = {
        "source": "registered",
        "copies": "sum",
        "cutoff_after_publish_hours": 24,
        "videos": [
            {"contestant": "c0", "platform": "douyin", "account_id": "dy0", "video_id": "v0"},
            {"contestant": "c0", "platform": "douyin", "account_id": "organiser", "video_id": "v0c", "copy_of": "v0"},
        ],
    }
    assert _check(_with(slots, entries)) == []


def test_slot_problems() -> None:
    slots = {
        "schedule": {
            "nobody": {"start": "2024-03-02T09:00:00+08:00", "end": "2024-03-02T10:00:00+08:00"},
            "c1": {"start": "2024-03-02T10:00:00+08:00", "end": "2024-03-02T09:00:00+08:00"},
            "c2": {"start": "2024-02-02T09:00:00+08:00", "end": "2024-02-02T10:00:00+08:00"},
        }
    }
    got = _check(_with(slots=slots))
    assert (f"{R}.slots.schedule.c1", "start must be before end") in got
    assert (f"{R}.slots.schedule.c2", "the slot is not inside the round's window") in got
    assert any(p == f"{R}.slots.schedule.nobody" and m.startswith("unknown contestant 'nobody'") for p, m in got)


def test_entry_problems() -> None:
    v = {"contestant": "c0", "platform": "douyin", "account_id": "dy0"}
    entries = {
        "source": "registered",
        "videos": [
            {**v, "video_id": "a"},
            {**v, "video_id": "a"},  # twice
            {**v, "video_id": "b", "platform": "wechat_channels"},  # not a platform of the contest
            {**v, "video_id": "c", "copy_of": "c"},  # itself
            {**v, "video_id": "d", "copy_of": "e"},  # a copy of a copy
            {**v, "video_id": "e", "copy_of": "a"},
            {**v, "video_id": "f", "contestant": "c1", "copy_of": "a"},  # another contestant's entry
        ],
    }
    got = dict(_check(_with(entries=entries)))
    assert got[f"{R}.entries.videos[1].video_id"].startswith("video 'a' is listed twice")
    assert got[f"{R}.entries.videos[2].platform"] == "'wechat_channels' is not one of the contest's platforms"
    assert got[f"{R}.entries.videos[3].copy_of"] == "a video cannot be a copy of itself"
    assert got[f"{R}.entries.videos[4].copy_of"] == "'e' is itself a copy: name the original"
    assert got[f"{R}.entries.videos[6].copy_of"] == "'a' is 'c0''s entry, not 'c1''s"
    assert len(got) == 5


def test_a_list_or_cutoff_needs_registered_entries() -> None:
    entries = {
        "source": "published_in_window",
        "cutoff_after_publish_hours": 24,
        "videos": [{"contestant": "c0", "platform": "douyin", "account_id": "dy0", "video_id": "a"}],
    }
    assert sorted(_check(_with(entries=entries))) == [
        (f"{R}.entries.cutoff_after_publish_hours", "a cut-off applies to registered entries only"),
        (f"{R}.entries.videos", "an entry list needs source: registered"),
    ]


def test_the_shipped_files_declare_slots_and_entries() -> None:
    harbin = load_contest(HARBIN)
    semi, final = harbin.round("semi"), harbin.round("final")
    assert semi.entries is not None and (semi.entries.source, semi.entries.copies) == ("registered", "sum")
    assert semi.entries.cutoff_after_publish_hours == 24
    assert {e.account_id for e in semi.entries.videos if e.copy_of} == {"ks_harbin_union"}
    assert final.slots is not None and len(final.slots.schedule) == 8
    # "为期1小时": every sample slot is one hour inside the final's day
    assert {w.end - w.start for w in final.slots.schedule.values()} == {3_600_000}
    assert min(w.start for w in final.slots.schedule.values()) >= at("2020-09-26T00:00:00+08:00")
    shaoyang = load_contest(SHAOYANG).round("city-final")
    assert shaoyang.entries is not None and shaoyang.entries.copies == "ignore"
    assert {e.account_id for e in shaoyang.entries.videos} == {"finder_xiangjiuye"}


def test_validate_summary_names_slots_and_entries() -> None:
    from click.testing import CliRunner

    from services.scoring.contest_cli import contest

    result = CliRunner().invoke(contest, ["validate", str(HARBIN), str(SHAOYANG)])
    assert result.exit_code == 0, result.output
    assert "直播时段 live slots: only inside each contestant's own slot; 8 in the file" in result.output
    assert "as of 24 h after publishing, copies: sum" in result.output  # Harbin semi
    assert "as of the round's end, copies: ignore" in result.output  # Shaoyang
