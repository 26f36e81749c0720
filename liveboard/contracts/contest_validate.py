"""Load a contest file and report every problem in it, each with its path and line.

Three passes, each collecting everything it finds: YAML (syntax, duplicate keys), structure (the pydantic
models of contest.py: types, unknown keys, missing keys) and meaning (references, weights, counts,
windows). The third pass needs a structurally valid file, so it runs once the first two are clean.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from liveboard.contracts.contest import (
    Contest,
    JudgesNode,
    MetricNode,
    Node,
    RankPoints,
    Ratio,
    RawValue,
    Round,
    SumNode,
    WeightedNode,
    iter_nodes,
    node_max,
)
from liveboard.contracts.metrics import ALL_METRICS, BASE_METRICS, DERIVED_METRICS, availability
from liveboard.contracts.yamlsafe import YamlLimitError, compose_limited, paused_gc, read_limited
from liveboard.errors import ValidationError

PathT = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int | None
    message: str

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ContestValidationError(ValidationError):
    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        super().__init__("\n".join(p.render(filename) for p in problems))


# ------------------------------------------------------------------------------------------------ YAML


class ContestYamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: window times stay the strings the organiser wrote."""


ContestYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_yaml(text: str) -> tuple[Any, dict[PathT, int], list[Problem]]:
    # Size, depth and alias limits (yamlsafe.py): a small alias bomb or a deep nesting is refused here,
    # before anything walks the document.
    try:
        loader, node = compose_limited(text, ContestYamlLoader)
    except YamlLimitError as exc:
        return None, {}, [Problem("", exc.line, f"refused: {exc.message}")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, {}, [Problem("", line, f"bad YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem("", None, f"bad YAML: {exc}")]
    try:
        if node is None:
            return None, {}, [Problem("", 1, "the file is empty")]
        lines: dict[PathT, int] = {}
        problems: list[Problem] = []
        _walk_positions(node, (), lines, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, {}, [Problem("", line, f"bad YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem("", None, f"bad YAML: {exc}")]
    finally:
        loader.dispose()
    return data, lines, problems


def _walk_positions(node: yaml.Node, path: PathT, lines: dict[PathT, int], problems: list[Problem]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    Problem(
                        _fmt((*path, key)),
                        key_node.start_mark.line + 1,
                        f"duplicate key (first at line {seen[key]}); YAML would silently keep the last",
                    )
                )
            seen[key] = key_node.start_mark.line + 1
            _walk_positions(value_node, (*path, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_positions(item, (*path, i), lines, problems)


def _fmt(path: PathT) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(lines: dict[PathT, int], path: PathT) -> int | None:
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return None


# ------------------------------------------------------------------------------------------ structure


def _structure_problems(data: Any, exc: PydanticValidationError, lines: dict[PathT, int]) -> list[Problem]:
    by_path: dict[PathT, list[str]] = defaultdict(list)
    for err in exc.errors(include_url=False):
        path = _data_path(data, err["loc"])
        message = _message(err)
        if message not in by_path[path]:
            by_path[path].append(message)
    return [Problem(_fmt(p), _line(lines, p), " / ".join(msgs)) for p, msgs in by_path.items()]


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathT:
    """Drop the union tags pydantic inserts into ``loc`` so the path is the one in the file."""
    path: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and isinstance(part, str) and part in (cur.get("kind"), cur.get("method")):
            continue  # the discriminated union's tag (a "metric" node also has a "metric" key)
        if isinstance(cur, dict) and part in cur:
            path.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            path.append(part)
            cur = cur[part]
        elif i == len(loc) - 1 and isinstance(cur, dict) and isinstance(part, str) and not _is_tag(part):
            path.append(part)  # a missing or unknown key: the path names it
        # else: a union member label ("weighted", "min_max", "str", "Ratio", ...) — not in the file
    return tuple(path)


def _is_tag(part: str) -> bool:
    return part in {
        "metric",
        "judges",
        "sum",
        "weighted",
        "min_max",
        "ratio_to_best",
        "rank",
        "raw",
        "str",
        "Ratio",
        "int",
        "constrained-int",
    } or part.startswith(("function-", "literal["))


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')} (got {err.get('input')!r})"
    if kind == "union_tag_invalid":
        return f"{ctx.get('discriminator')} must be one of {ctx.get('expected_tags')} (got {ctx.get('tag')!r})"
    if kind == "union_tag_not_found":
        return f"{ctx.get('discriminator')} is required"
    msg = str(err.get("msg", kind))
    return msg.removeprefix("Value error, ")


# -------------------------------------------------------------------------------------------- meaning


def semantic_problems(contest: Contest) -> Iterator[tuple[PathT, str]]:
    """Everything a well-typed contest file can still get wrong, as ``(path, message)``."""
    yield from _registration_problems(contest)
    round_index = {r.id: i for i, r in enumerate(contest.rounds())}
    round_paths = {
        r.id: ("stages", si, "rounds", ri) for si, s in enumerate(contest.stages) for ri, r in enumerate(s.rounds)
    }
    yield from _duplicates([(round_paths[r.id], r.id) for r in contest.rounds()], "round id")
    yield from _duplicates([(("stages", i, "id"), s.id) for i, s in enumerate(contest.stages)], "stage id")
    group_ids = {g.id for g in contest.groups}
    windows_by_group: dict[str, list[tuple[Round, PathT]]] = defaultdict(list)
    for rnd in contest.rounds():
        base = round_paths[rnd.id]
        yield from _round_problems(contest, rnd, base, group_ids, round_index)
        for g in contest.round_groups(rnd):
            windows_by_group[g].append((rnd, base))
    for group, items in windows_by_group.items():
        items.sort(key=lambda item: (item[0].window.start, item[0].window.end))
        for i, (a, _) in enumerate(items):
            for b, bpath in items[i + 1 :]:
                if b.window.start >= a.window.end:
                    break
                if a.id in b.spans or b.id in a.spans:
                    continue
                yield (
                    (*bpath, "window"),
                    f"overlaps round {a.id!r} for group {group!r}: a metric would count in both rounds",
                )


def _duplicates(items: list[tuple[PathT, str]], what: str) -> Iterator[tuple[PathT, str]]:
    first: dict[str, PathT] = {}
    for path, value in items:
        if value in first:
            yield path, f"{what} {value!r} is listed twice (first at {_fmt(first[value])})"
        else:
            first[value] = path


def _registration_problems(contest: Contest) -> Iterator[tuple[PathT, str]]:
    if contest.sales is not None:
        for platform in contest.sales.platforms:
            if platform not in contest.platforms:
                yield ("sales", "platforms", platform), f"{platform!r} is not one of the contest's platforms"
    orgs = {o.id: o for o in contest.organisations}
    yield from _duplicates(
        [(("organisations", i, "id"), o.id) for i, o in enumerate(contest.organisations)], "organisation id"
    )
    yield from _duplicates([(("groups", i, "id"), g.id) for i, g in enumerate(contest.groups)], "group id")
    for i, org in enumerate(contest.organisations):
        if org.parent is not None and org.parent not in orgs:
            yield ("organisations", i, "parent"), f"unknown organisation {org.parent!r}"
    groups = {g.id: g for g in contest.groups}
    for gi, group in enumerate(contest.groups):
        for org_id in group.quotas or {}:
            if org_id not in orgs:
                yield ("groups", gi, "quotas", org_id), f"unknown organisation {org_id!r}"

    seen_contestant: dict[str, tuple[int, str]] = {}
    seen_account: dict[tuple[str, str], int] = {}
    per_quota: Counter[tuple[str, str]] = Counter()
    for ci, c in enumerate(contest.contestants):
        base: PathT = ("contestants", ci)
        if c.id in seen_contestant:
            prev_i, prev_group = seen_contestant[c.id]
            detail = f"in two groups ({prev_group!r} and {c.group!r})" if prev_group != c.group else "listed twice"
            yield (*base, "id"), f"contestant {c.id!r} is {detail} (first at contestants[{prev_i}])"
        else:
            seen_contestant[c.id] = (ci, c.group)
        if c.group not in groups:
            yield (*base, "group"), f"unknown group {c.group!r}"
        if not c.accounts:
            yield (*base, "accounts"), "needs one platform account"
        elif contest.single_account and len(c.accounts) > 1:
            yield (*base, "accounts"), f"{len(c.accounts)} accounts, but this contest allows one per contestant"
        for platform, account in c.accounts.items():
            if platform not in contest.platforms:
                yield (
                    (*base, "accounts", platform),
                    f"platform {platform!r} is not one of the contest's {contest.platforms}",
                )
            key = (platform, account)
            if key in seen_account:
                first = contest.contestants[seen_account[key]].id
                yield (*base, "accounts", platform), f"account {platform}:{account} is already registered to {first!r}"
            else:
                seen_account[key] = ci
        for level in ("city", "district", "team"):
            org_id = getattr(c.organisation, level)
            if org_id is None:
                continue
            org = orgs.get(org_id)
            if org is None:
                yield (*base, "organisation", level), f"unknown organisation {org_id!r}"
            elif org.level != level:
                yield (*base, "organisation", level), f"{org_id!r} is a {org.level}, not a {level}"
            elif level != "city" and org.parent is not None and c.organisation.city not in (None, org.parent):
                parent = orgs.get(org.parent)
                if parent is not None and parent.level == "city":
                    yield (
                        (*base, "organisation", level),
                        f"{org_id!r} belongs to {org.parent!r}, not {c.organisation.city!r}",
                    )
        group = groups.get(c.group)
        if group is not None and group.quotas:
            for level in ("city", "district", "team"):
                org_id = getattr(c.organisation, level)
                if org_id in group.quotas:
                    per_quota[(c.group, org_id)] += 1
    for gi, group in enumerate(contest.groups):
        for org_id, quota in (group.quotas or {}).items():
            n = per_quota[(group.id, org_id)]
            if n > quota:
                yield ("groups", gi, "quotas", org_id), f"{n} contestants registered, quota is {quota}"


def _round_problems(
    contest: Contest, rnd: Round, base: PathT, group_ids: set[str], round_index: dict[str, int]
) -> Iterator[tuple[PathT, str]]:
    if rnd.window.start >= rnd.window.end:
        yield (*base, "window"), "start must be before end"
    for i, spanned in enumerate(rnd.spans):
        if spanned not in round_index or spanned == rnd.id:
            yield (*base, "spans", i), f"unknown round {spanned!r}"
            continue
        inner = contest.round(spanned).window
        if inner.start < rnd.window.start or inner.end > rnd.window.end:
            yield (*base, "spans", i), f"round {spanned!r} is not inside this round's window"
    for i, g in enumerate(rnd.groups or []):
        if g not in group_ids:
            yield (*base, "groups", i), f"unknown group {g!r}"
    groups = [g for g in contest.round_groups(rnd) if g in group_ids]
    if rnd.entrants is not None:
        src = rnd.entrants.from_round
        if src not in round_index:
            yield (*base, "entrants", "from_round"), f"unknown round {src!r}"
        elif round_index[src] >= round_index[rnd.id]:
            yield (*base, "entrants", "from_round"), f"round {src!r} does not come before {rnd.id!r}"
        elif contest.round(src).advancement is None:
            yield (*base, "entrants", "from_round"), f"round {src!r} has no advancement"

    # formulas
    for g in rnd.scoring_by_group:
        if g not in groups:
            yield (*base, "scoring_by_group", g), f"group {g!r} is not ranked in this round"
    if rnd.scoring is None:
        for g in groups:
            if g not in rnd.scoring_by_group:
                yield (*base, "scoring"), f"group {g!r} has no formula (give scoring or scoring_by_group.{g})"
    formulas: list[tuple[PathT, Node]] = []
    if rnd.scoring is not None:
        formulas.append(((*base, "scoring"), rnd.scoring))
    formulas.extend(((*base, "scoring_by_group", g), n) for g, n in rnd.scoring_by_group.items())
    node_ids_all: set[str] = set()
    for path, node in formulas:
        yield from _formula_problems(node, path)
        ids = [n.id for n in iter_nodes(node)]
        node_ids_all.update(ids)
        crit = [(path, c.id) for n in iter_nodes(node) if isinstance(n, JudgesNode) for c in n.criteria]
        yield from _duplicates(crit, "criterion id (judge_score events name it)")
        yield from _duplicates([(path, i) for i in ids], "component id")
        if node.weight is not None:
            yield (*path, "weight"), "the top of a formula has no weight"

    for i, key in enumerate(rnd.tie_break):
        if key not in node_ids_all and key not in ALL_METRICS:
            yield (*base, "tie_break", i), f"{key!r} is neither a component of this round nor a known metric"
    if rnd.tie_break and rnd.ties is not None:
        yield (*base, "tie_break"), "give either tie_break (shorthand) or ties, not both"
    if rnd.ties is not None:
        yield from _ties_problems(rnd.ties, (*base, "ties"), node_ids_all | ALL_METRICS, "a component or a metric")
    for path, node in formulas:
        for sub_path, n in _metric_nodes(node, path):
            yield from _platform_problems(contest, n, sub_path)

    # counts against the field
    for g in groups:
        size, basis = _field_size(contest, rnd, g)
        fixed = sum(a.count for a in rnd.awards if a.count != "rest")
        if size is not None and fixed > size:
            yield (*base, "awards"), f"{fixed} fixed award places but the field of group {g!r} is {size} ({basis})"
        if rnd.advancement is not None and rnd.advancement.per == "group" and size is not None:
            if rnd.advancement.top > size:
                yield (
                    (*base, "advancement", "top"),
                    f"{rnd.advancement.top} advance but the field of group {g!r} is {size} ({basis})",
                )
    yield from _awards_problems(rnd.awards, (*base, "awards"))
    if rnd.field is not None and rnd.field.max is not None and rnd.field.max < rnd.field.min:
        yield (*base, "field", "max"), "max is below min"

    levels = {o.level for o in contest.organisations}
    for ci, rule in enumerate(rnd.collective):
        cpath = (*base, "collective", ci)
        if rule.level not in levels:
            yield (*cpath, "level"), f"no organisation of level {rule.level!r} is declared"
        if rule.aggregate.startswith("top_k") and rule.k is None:
            yield (*cpath, "k"), f"{rule.aggregate} needs k"
        if not rule.aggregate.startswith("top_k") and rule.k is not None:
            yield (*cpath, "k"), f"k only applies to top_k_sum / top_k_mean, not {rule.aggregate}"
        if rule.of != "total" and rule.of not in node_ids_all:
            yield (*cpath, "of"), f"{rule.of!r} is not 'total' or a component of this round"
        n_orgs = sum(1 for o in contest.organisations if o.level == rule.level)
        fixed = sum(a.count for a in rule.awards if a.count != "rest")
        if n_orgs and fixed > n_orgs:
            yield (
                (*cpath, "awards"),
                f"{fixed} fixed award places but only {n_orgs} organisations of level {rule.level!r}",
            )
        yield from _awards_problems(rule.awards, (*cpath, "awards"))
        if rule.ties is not None:
            yield from _ties_problems(rule.ties, (*cpath, "ties"), node_ids_all | {"total"}, "'total' or a component")

    if rnd.team_size is not None:
        if rnd.team_size.max < rnd.team_size.min:
            yield (*base, "team_size", "max"), "max is below min"
        members = Counter(c.organisation.team for c in contest.contestants if c.organisation.team and c.group in groups)
        for team, n in sorted(members.items()):
            if not rnd.team_size.min <= n <= rnd.team_size.max:
                yield (
                    (*base, "team_size"),
                    f"team {team!r} has {n} members, allowed {rnd.team_size.min}..{rnd.team_size.max}",
                )
    yield from _slots_entries_problems(contest, rnd, base, groups)


def _slots_entries_problems(
    contest: Contest, rnd: Round, base: PathT, groups: list[str]
) -> Iterator[tuple[PathT, str]]:
    """Live slots and registered entries (issue 9 items 5, 6): who, where and when they name."""
    known = contest.contestants_by_id()

    def who(path: PathT, cid: str) -> Iterator[tuple[PathT, str]]:
        c = known.get(cid)
        if c is None:
            yield path, f"unknown contestant {cid!r} (contestants registered by event get slots and entries by event)"
        elif c.group not in groups:
            yield path, f"contestant {cid!r} is in group {c.group!r}, which this round does not rank"

    if rnd.slots is not None:
        for cid, slot in rnd.slots.schedule.items():
            spath = (*base, "slots", "schedule", cid)
            yield from who(spath, cid)
            if slot.start >= slot.end:
                yield spath, "start must be before end"
            elif slot.start < rnd.window.start or slot.end > rnd.window.end:
                yield spath, "the slot is not inside the round's window"
    e = rnd.entries
    if e is None:
        return
    epath = (*base, "entries")
    if e.source != "registered":
        if e.videos:
            yield (*epath, "videos"), "an entry list needs source: registered"
        if e.cutoff_after_publish_hours is not None:
            yield (*epath, "cutoff_after_publish_hours"), "a cut-off applies to registered entries only"
        return
    seen: dict[tuple[str, str], PathT] = {}
    for i, entry in enumerate(e.videos):
        vpath = (*epath, "videos", i)
        yield from who((*vpath, "contestant"), entry.contestant)
        if entry.platform not in contest.platforms:
            yield (*vpath, "platform"), f"{entry.platform!r} is not one of the contest's platforms"
        key = (entry.platform, entry.video_id)
        if key in seen:
            yield (*vpath, "video_id"), f"video {entry.video_id!r} is listed twice (first at {_fmt(seen[key])})"
        else:
            seen[key] = vpath
    by_video = {(x.platform, x.video_id): x for x in e.videos}
    for i, entry in enumerate(e.videos):
        if entry.copy_of is None:
            continue
        cpath = (*epath, "videos", i, "copy_of")
        original = by_video.get((entry.platform, entry.copy_of))
        if entry.copy_of == entry.video_id:
            yield cpath, "a video cannot be a copy of itself"
        elif original is not None and original.copy_of is not None:
            yield cpath, f"{entry.copy_of!r} is itself a copy: name the original"
        elif original is not None and original.contestant != entry.contestant:
            yield cpath, f"{entry.copy_of!r} is {original.contestant!r}'s entry, not {entry.contestant!r}'s"


def _ties_problems(ties: Any, path: PathT, known: set[str], what: str) -> Iterator[tuple[PathT, str]]:
    if ties.policy == "tie_break" and not ties.keys:
        yield (*path, "keys"), "the tie_break policy needs keys (the notice's own tie-break items)"
    if ties.policy != "tie_break" and ties.keys:
        yield (*path, "keys"), f"keys only apply to the tie_break policy, not {ties.policy!r}"
    if ties.policy != "tie_break" and "then" in ties.model_fields_set:
        yield (*path, "then"), f"then only applies to the tie_break policy, not {ties.policy!r}"
    for i, key in enumerate(ties.keys):
        if key not in known:
            yield (*path, "keys", i), f"{key!r} is not {what} of this round"
    yield from _duplicates([((*path, "keys", i), k) for i, k in enumerate(ties.keys)], "tie-break key")


def _metric_nodes(node: Node, path: PathT) -> Iterator[tuple[PathT, MetricNode]]:
    if isinstance(node, MetricNode):
        yield path, node
    elif isinstance(node, SumNode | WeightedNode):
        for i, child in enumerate(node.components):
            yield from _metric_nodes(child, (*path, "components", i))


def _metric_names(metric: str | Ratio) -> list[str]:
    return [metric] if isinstance(metric, str) else [*metric.numerator, *metric.denominator]


def _is_ratio(metric: str | Ratio) -> bool:
    return not isinstance(metric, str) or bool(metric in DERIVED_METRICS and DERIVED_METRICS[metric].denominator)


def _platform_problems(contest: Contest, node: MetricNode, path: PathT) -> Iterator[tuple[PathT, str]]:
    """A metric one of the contest's platforms cannot deliver needs a substitute for that platform."""
    for platform, sub in node.by_platform.items():
        spath = (*path, "by_platform", platform)
        if platform not in contest.platforms:
            yield spath, f"platform {platform!r} is not one of the contest's {contest.platforms}"
            continue
        names = _metric_names(sub)
        unknown = [m for m in names if m not in (ALL_METRICS if isinstance(sub, str) else BASE_METRICS)]
        if unknown:
            yield spath, f"unknown metric {unknown[0]!r} (see liveboard/contracts/metrics.py)"
            continue
        if _is_ratio(sub) != _is_ratio(node.metric):
            yield spath, "a substitute must be a ratio when the metric is one (and a count when it is not)"
    names = _metric_names(node.metric)
    if any(m not in ALL_METRICS for m in names):
        return  # reported as an unknown metric
    for platform in contest.platforms:
        sub = node.by_platform.get(platform)
        if sub is not None:
            names_p = _metric_names(sub)
            if any(m not in ALL_METRICS for m in names_p) or availability(platform, names_p) is not None:
                continue
            yield (
                (*path, "by_platform", platform),
                f"{platform} cannot deliver {' / '.join(names_p)} either (liveboard/contracts/metrics.py)",
            )
            continue
        if availability(platform, names) is None:
            how = (
                " (normalise_within: platform compares within a platform, but this one has no value at all)"
                if node.normalise_within == "platform"
                else ""
            )
            yield (
                (*path, "metric"),
                f"{platform} cannot deliver {' / '.join(names)} (liveboard/contracts/metrics.py PLATFORM_METRICS), "
                f"and {platform} is one of this contest's platforms: say how its contestants are scored with "
                f"by_platform: {{{platform}: <a metric it delivers>}}{how}",
            )


def semantic_warnings(contest: Contest) -> Iterator[tuple[PathT, str]]:
    """What a valid file should still look at: undeclared tie policies, metrics some accounts may lack."""
    for si, stage in enumerate(contest.stages):
        for ri, rnd in enumerate(stage.rounds):
            base: PathT = ("stages", si, "rounds", ri)
            if (rnd.awards or rnd.advancement is not None) and contest.ties_for(rnd) is None:
                yield (
                    base,
                    "no tie policy (ties: share / tie_break / decide): a tie across an award or advancement "
                    "boundary will be 待定 until an operator decides it",
                )
            for ci, rule in enumerate(rnd.collective):
                if rule.awards and rule.ties is None:
                    yield (
                        (*base, "collective", ci),
                        "no tie policy for this collective award list: a tie across an award boundary will be 待定",
                    )
            formulas: list[tuple[PathT, Node]] = []
            if rnd.scoring is not None:
                formulas.append(((*base, "scoring"), rnd.scoring))
            formulas.extend(((*base, "scoring_by_group", g), n) for g, n in rnd.scoring_by_group.items())
            for fpath, root in formulas:
                for path, node in _metric_nodes(root, fpath):
                    if "missing" in node.model_fields_set:
                        continue
                    for platform in contest.platforms:
                        names = _metric_names(node.by_platform.get(platform, node.metric))
                        if any(m not in ALL_METRICS for m in names):
                            continue
                        if availability(platform, names) == "partial":
                            yield (
                                path,
                                f"{platform} delivers {' / '.join(names)} only through some endpoints or "
                                "accounts: say what a missing value means (missing: zero | hold | "
                                "exclude_from_bounds; default zero)",
                            )


def _awards_problems(awards: list[Any], path: PathT) -> Iterator[tuple[PathT, str]]:
    yield from _duplicates([((*path, i, "id"), a.id) for i, a in enumerate(awards)], "award id")
    for i, a in enumerate(awards):
        if a.count == "rest" and i != len(awards) - 1:
            yield (*path, i, "count"), '"rest" takes every remaining place, so it must be the last award'


def _field_size(contest: Contest, rnd: Round, group: str) -> tuple[int | None, str]:
    if rnd.field is not None:
        return rnd.field.min, "field.min"
    if rnd.entrants is not None:
        try:
            src = contest.round(rnd.entrants.from_round)
        except KeyError:
            return None, ""
        if src.advancement is not None:
            if src.advancement.per == "group":
                return src.advancement.top, f"top {src.advancement.top} of {src.id!r}"
            return src.advancement.top, f"top {src.advancement.top} of {src.id!r} overall"
        return None, ""
    n = sum(1 for c in contest.contestants if c.group == group)
    return n, "registered contestants"


def _formula_problems(node: Node, path: PathT) -> Iterator[tuple[PathT, str]]:
    if isinstance(node, MetricNode):
        names = [node.metric] if isinstance(node.metric, str) else [*node.metric.numerator, *node.metric.denominator]
        for name in names:
            allowed = ALL_METRICS if isinstance(node.metric, str) else BASE_METRICS
            if name not in allowed:
                yield (*path, "metric"), f"unknown metric {name!r} (see liveboard/contracts/metrics.py)"
        n = node.normalise
        if isinstance(n, RawValue):
            if n.scale <= 0:
                yield (*path, "normalise", "scale"), "must be > 0"
            if n.cap is not None and n.cap <= 0:
                yield (*path, "normalise", "cap"), "must be > 0"
        else:
            if n.points <= 0:
                yield (*path, "normalise", "points"), "must be > 0"
            if isinstance(n, RankPoints) and n.step <= 0:
                yield (*path, "normalise", "step"), "must be > 0"
        if isinstance(node.metric, Ratio) and not node.metric.denominator:
            yield (*path, "metric", "denominator"), "is required"
    elif isinstance(node, JudgesNode):
        for i, c in enumerate(node.criteria):
            if c.max_points <= 0:
                yield (*path, "criteria", i, "max_points"), "must be > 0"
        if node.drop_extremes and node.min_judges < 3:
            yield (*path, "min_judges"), "dropping the highest and lowest needs at least 3 judges"
        if node.panel is not None:
            yield from _duplicates([((*path, "panel", i), j) for i, j in enumerate(node.panel)], "judge")
            if len(node.panel) < node.min_judges:
                yield (*path, "panel"), f"{len(node.panel)} judges but min_judges is {node.min_judges}"
        if node.scale_to is not None and node.scale_to <= 0:
            yield (*path, "scale_to"), "must be > 0"
    elif isinstance(node, SumNode | WeightedNode):
        for i, child in enumerate(node.components):
            cpath = (*path, "components", i)
            yield from _formula_problems(child, cpath)
            if isinstance(node, SumNode) and child.weight is not None:
                yield (*cpath, "weight"), "components of a 'sum' add up as points and take no weight"
            if isinstance(node, WeightedNode):
                if child.weight is None:
                    yield (*cpath, "weight"), "components of a 'weighted' node need a weight (percent)"
                elif child.weight <= 0:
                    yield (*cpath, "weight"), "must be > 0"
        if isinstance(node, WeightedNode):
            weights = [c.weight for c in node.components if c.weight is not None]
            if len(weights) == len(node.components) and sum(weights, Decimal(0)) != 100:
                listed = " + ".join(str(w) for w in weights)
                yield (*path, "components"), f"weights must sum to 100 %, got {listed} = {sum(weights, Decimal(0))}"
            fulls = {node_max(c) for c in node.components if not _is_uncapped(c)}
            if len(fulls) > 1:
                shown = ", ".join(f"{c.id}={node_max(c)}" for c in node.components)
                yield (*path, "components"), f"weighted components must share one full score, got {shown}"


def _is_uncapped(node: Node) -> bool:
    return isinstance(node, MetricNode) and isinstance(node.normalise, RawValue) and node.normalise.cap is None


# ---------------------------------------------------------------------------------------------- entry


def check_contest_text(text: str, warnings: list[Problem] | None = None) -> tuple[Contest | None, list[Problem]]:
    """Parse and check a contest file's text; returns the contest (or None) and every problem found.

    Warnings (a valid file's loose ends: undeclared tie policies, metrics some accounts may not deliver)
    are appended to ``warnings`` when a list is given; they never make the file invalid."""
    # a 30,000-contestant file builds ~1.5 million objects, none of them garbage: no cyclic GC passes
    with paused_gc():
        return _check_contest_text(text, warnings)


def _check_contest_text(text: str, warnings: list[Problem] | None) -> tuple[Contest | None, list[Problem]]:
    data, lines, problems = _parse_yaml(text)
    if data is None and problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [*problems, Problem("", 1, "the file must be a mapping (contest fields at the top level)")]
    # Top-level "x-…" keys only hold YAML anchors shared by several rounds (as in docker-compose).
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        contest = Contest.model_validate(data)
    except PydanticValidationError as exc:
        problems.extend(_structure_problems(data, exc, lines))
        # Keep going: drop the malformed list items and check the meaning of the rest, so one run
        # lists every problem rather than the structural ones first.
        problems.extend(_semantics_of_the_rest(data, exc, lines))
        return None, _in_file_order(problems)
    for path, message in semantic_problems(contest):
        problems.append(Problem(_fmt(path), _line(lines, path), message))
    if warnings is not None and not problems:
        warnings.extend(
            _in_file_order(
                [Problem(_fmt(path), _line(lines, path), message) for path, message in semantic_warnings(contest)]
            )
        )
    return (contest if not problems else None), _in_file_order(problems)


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)  # stable: same-line problems keep their order


def _semantics_of_the_rest(
    data: dict[str, Any], exc: PydanticValidationError, lines: dict[PathT, int]
) -> list[Problem]:
    current: Any = data
    to_original: Callable[[PathT], PathT] = lambda p: p  # noqa: E731
    dropped: set[PathT] = set()
    for _ in range(8):
        bad = {_list_item_ancestor(_data_path(current, err["loc"])) for err in exc.errors(include_url=False)}
        if None in bad:
            return []  # a top-level field is malformed: nothing sensible to check further
        dropped |= {to_original(p) for p in bad if p is not None}
        current, step = _without(current, {p for p in bad if p is not None})
        to_original = _compose(to_original, step)
        try:
            contest = Contest.model_validate(current)
        except PydanticValidationError as again:
            exc = again
            continue
        break
    else:
        return []
    # An aggregate check on the list a malformed item was dropped from ("weights must sum to 100",
    # "award places exceed the field") would only repeat the structural problem: skip those.
    parents = {p[:-1] for p in dropped}
    out = []
    for path, message in semantic_problems(contest):
        original = to_original(path)
        if original in parents:
            continue
        out.append(Problem(_fmt(original), _line(lines, original), message))
    return out


def _compose(outer: Callable[[PathT], PathT], inner: Callable[[PathT], PathT]) -> Callable[[PathT], PathT]:
    return lambda p: outer(inner(p))


def _list_item_ancestor(path: PathT) -> PathT | None:
    for cut in range(len(path), 0, -1):
        if isinstance(path[cut - 1], int):
            return path[:cut]
    return None


def _without(data: Any, bad: set[PathT]) -> tuple[Any, Callable[[PathT], PathT]]:
    """A copy of ``data`` without the list items at ``bad``, and a map from new paths to old ones."""
    kept_by_list: dict[PathT, list[int]] = {}

    def rec(node: Any, old: PathT, new: PathT) -> Any:
        if isinstance(node, dict):
            return {k: rec(v, (*old, k), (*new, k)) for k, v in node.items()}
        if isinstance(node, list):
            kept = [i for i in range(len(node)) if (*old, i) not in bad]
            kept_by_list[new] = kept
            return [rec(node[i], (*old, i), (*new, j)) for j, i in enumerate(kept)]
        return node

    pruned = rec(data, (), ())

    def to_old(path: PathT) -> PathT:
        out: list[str | int] = []
        for n, part in enumerate(path):
            kept = kept_by_list.get(path[:n])
            if kept is not None and isinstance(part, int) and 0 <= part < len(kept):
                out.append(kept[part])
            else:
                out.append(part)
        return tuple(out)

    return pruned, to_old


def check_contest_file(path: str | Path, warnings: list[Problem] | None = None) -> tuple[Contest | None, list[Problem]]:
    try:
        text = read_limited(path)  # a file over the size limit is refused without being read whole
    except YamlLimitError as exc:
        return None, [Problem("", None, f"refused: {exc.message}")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem("", None, f"cannot read: {exc}")]
    return check_contest_text(text, warnings)


def load_contest(path: str | Path) -> Contest:
    """The contest in ``path``, or :class:`ContestValidationError` listing every problem."""
    contest, problems = check_contest_file(path)
    if contest is None:
        raise ContestValidationError(str(path), problems)
    return contest
