"""A 30,000-contestant contest file loads through libyaml's C parser within the YAML limits.

The pure-Python path took 47 s for this file at load 7 (15 s for 3,000 contestants); the fast path parses and
composes in C, counts depth and aliases on libyaml's events first, and pauses the cyclic GC while the
values are built. Nothing here times the wall clock: the tests check that the fast path is the one taken,
that it gives exactly what the pure-Python path gives, and that the limits still refuse what they refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import liveboard.contracts.yamlsafe as yamlsafe
from liveboard.contracts.contest_validate import ContestYamlLoader, check_contest_file, load_contest
from liveboard.contracts.yamlsafe import YamlLimitError, YamlLimits, c_twin, compose_limited, load_limited
from tests.scoring.contests import contest_doc, write_contest

REPO_ROOT = Path(__file__).resolve().parents[2]
needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")


@pytest.fixture
def pure_python(monkeypatch: pytest.MonkeyPatch):
    """Every loader's libyaml twin off: the pure-Python, composer-counted path."""
    monkeypatch.setattr(yamlsafe, "_c_twins", {yaml.SafeLoader: None, ContestYamlLoader: None})


@needs_libyaml
def test_a_30000_contestant_file_loads_through_libyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_contest(tmp_path, contest_doc("wide", 30_000, groups=3))
    assert path.stat().st_size > 4 << 20  # over the default size limit: the operator raises it (docs/contests.md)
    _, problems = check_contest_file(path)
    assert "LIVEBOARD_YAML_MAX_BYTES" in problems[0].message
    monkeypatch.setenv("LIVEBOARD_YAML_MAX_BYTES", str(16 << 20))
    monkeypatch.setenv("LIVEBOARD_YAML_MAX_NODES", "1000000")
    loader, node = compose_limited(path.read_text(), ContestYamlLoader)
    try:
        assert isinstance(loader, yaml.CSafeLoader)  # the C parser and composer, not the Python ones
        assert node is not None and node.start_mark.line == 0
    finally:
        loader.dispose()
    contest = load_contest(path)
    assert len(contest.contestants) == 30_000
    assert contest.contestants[29_999].id == "c29999" and contest.contestants[29_999].group == "g3"
    assert [g.id for g in contest.groups] == ["g1", "g2", "g3"]


@needs_libyaml
def test_the_fast_path_gives_what_the_pure_python_path_gives(pure_python: None) -> None:
    # the shipped files use anchors, aliases and merge keys (<<); window times stay strings (no timestamps)
    files = sorted((REPO_ROOT / "contests").glob("*.yaml"))
    assert files
    slow = [load_contest(f).model_dump() for f in files]
    yamlsafe._c_twins.clear()  # back to the libyaml twins
    assert c_twin(ContestYamlLoader) is not None
    assert [load_contest(f).model_dump() for f in files] == slow
    text = "a: &x {k: 1, t: 2026-12-02}\nb: *x\nc: {<<: *x, k: 2}\n"
    assert load_limited(text) == {
        "a": {"k": 1, "t": yaml.safe_load("2026-12-02")},
        "b": {"k": 1, "t": yaml.safe_load("2026-12-02")},
        "c": {"k": 2, "t": yaml.safe_load("2026-12-02")},
    }


@needs_libyaml
def test_the_fast_path_keeps_every_limit() -> None:
    # depth: a value under 64 collections is level 65 (the composer's count), refused; 63 collections load
    assert load_limited("[" * 63 + "1" + "]" * 63) is not None
    with pytest.raises(YamlLimitError, match="nested more than 64 levels deep"):
        load_limited("[" * 64 + "1" + "]" * 64)
    with pytest.raises(YamlLimitError, match="LIVEBOARD_YAML_MAX_ALIASES"):
        load_limited("a: &a 1\nb: [*a, *a, *a, *a]\n", limits=YamlLimits(max_aliases=3))
    with pytest.raises(YamlLimitError, match="recursive alias"):
        load_limited("a: &a [1, *a]\n")
    # a plain document (no alias) over the value limit: refused from the event count, before any node
    with pytest.raises(YamlLimitError, match=r"holds 1,001 values; the limit is 1,000 \(LIVEBOARD_YAML_MAX_NODES\)"):
        load_limited("[" + ", ".join(["1"] * 1000) + "]", limits=YamlLimits(max_nodes=1000))
    assert load_limited("[" + ", ".join(["1"] * 999) + "]", limits=YamlLimits(max_nodes=1000)) == [1] * 999


@needs_libyaml
def test_bad_yaml_is_reported_as_the_pure_python_path_reports_it(pure_python: None) -> None:
    text = "id: x\nname: [unclosed\nother: 1\n"
    with pytest.raises(yaml.YAMLError) as slow:
        load_limited(text)
    yamlsafe._c_twins.clear()
    with pytest.raises(yaml.YAMLError) as fast:
        load_limited(text)
    assert str(fast.value) == str(slow.value)
