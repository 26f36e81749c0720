"""Contest files within limits (issue 15.6): size, nesting depth, alias uses and alias expansion, refused
at once with a message naming the limit, through ``liveboard contest validate`` as an organiser runs it and
through the loaders of the scorer and the collectors. Before the limits a 348-byte alias bomb took the
validator to 4-6 GB and 5,000-deep nesting ended in a RecursionError traceback."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liveboard.contracts.contest_validate import ContestValidationError, check_contest_text, load_contest
from liveboard.contracts.yamlsafe import YamlLimitError, YamlLimits, load_limited

LIVEBOARD = Path(sys.executable).parent / "liveboard"
REPO_ROOT = Path(__file__).resolve().parents[2]

# The classic "billion laughs": nine levels of nine aliases, 9**9 = 387,420,489 strings once expanded.
BOMB = (
    "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    + "# 348 bytes, issue 15 #\n"
)


def _limit_memory() -> None:  # the child may not take the machine down if the limits regress
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def validate(*files: Path, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(LIVEBOARD), "contest", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        preexec_fn=_limit_memory,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


def test_a_348_byte_alias_bomb_is_refused_quickly_naming_the_limit(tmp_path: Path) -> None:
    assert len(BOMB.encode()) == 348
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    good = REPO_ROOT / "contests" / "harbin-2020.yaml"
    rc, out, took = validate(bomb, good)
    assert rc != 0 and "Traceback" not in out, out
    assert "bomb.yaml:" in out and "LIVEBOARD_YAML_MAX_NODES" in out and "500,000" in out, out
    assert "✓ " + str(good) in out  # the other file is still checked
    assert took < 60, took  # the CLI's start-up included; before the limits it did not finish at all


def test_5000_deep_nesting_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("schema_version: 1\nid: deep\nname: " + "[" * 5000 + "]" * 5000 + "\n")
    deep_map = tmp_path / "deep-map.yaml"
    deep_map.write_text("".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n")
    rc, out, _ = validate(deep, deep_map)
    assert rc != 0 and "Traceback" not in out and "RecursionError" not in out, out
    assert "deep.yaml:3: refused: nested more than 64 levels deep" in out, out
    assert "deep-map.yaml:64: refused: nested more than 64 levels deep" in out, out
    assert out.count("LIVEBOARD_YAML_MAX_DEPTH") == 2


def test_size_and_alias_count_limits_are_settable_and_named(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 3000 + "\nid: big\n")
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("a: &a 1\nb: [*a, *a, *a, *a]\n")
    rc, out, _ = validate(big, aliases, env={"LIVEBOARD_YAML_MAX_BYTES": "2000", "LIVEBOARD_YAML_MAX_ALIASES": "3"})
    assert rc != 0, out
    assert "the file is 3,011 bytes; the limit is 2,000 bytes (LIVEBOARD_YAML_MAX_BYTES)" in out, out
    assert "aliases.yaml:2: refused: more than 3 alias uses" in out and "LIVEBOARD_YAML_MAX_ALIASES" in out, out


def test_a_recursive_alias_is_refused() -> None:
    contest, problems = check_contest_text("a: &a [1, *a]\n")
    assert contest is None and "recursive alias" in problems[0].message


def test_the_real_contest_files_are_well_within_the_limits() -> None:
    # Anchors/aliases and merges as organisers use them (shaoyang, jiangle) still load.
    for path in sorted((REPO_ROOT / "contests").glob("*.yaml")):
        assert load_contest(path).id


def test_the_scorer_and_the_collectors_refuse_the_bomb(tmp_path: Path) -> None:
    from services.ingest.registry import Registry
    from services.scoring.config import ScorerSettings
    from services.scoring.contests import load_plans

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    cfg = ScorerSettings(_env_file=None, contest_files=[bomb])  # type: ignore[call-arg]
    with pytest.raises(ContestValidationError, match="LIVEBOARD_YAML_MAX_NODES"):
        load_plans(cfg)
    with pytest.raises(ContestValidationError, match="LIVEBOARD_YAML_MAX_NODES"):
        Registry(lambda: 0).add_contest_file(bomb)


def test_the_generic_loader_keeps_yaml_semantics_within_limits() -> None:
    assert load_limited("a: &x {k: 1}\nb: *x\n") == {"a": {"k": 1}, "b": {"k": 1}}
    assert load_limited("") is None
    with pytest.raises(YamlLimitError, match="LIVEBOARD_YAML_MAX_NODES"):
        load_limited(BOMB)
    with pytest.raises(YamlLimitError, match="LIVEBOARD_YAML_MAX_DEPTH"):
        load_limited("[" * 10 + "]" * 10, limits=YamlLimits(max_depth=5))
