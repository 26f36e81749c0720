"""The topic catalog (schemas/topics.yaml) and `topics ensure`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from liveboard.errors import ConfigError, TopicError
from liveboard.kafka.clients import make_admin
from liveboard.paths import contracts_dir, topic_catalog_path
from liveboard.settings import Settings

RAW = "lb.raw.v1"
EVENTS = "lb.events.v1"
DLQ = "lb.dlq.v1"
SCORES = "lb.scores.v1"
REGISTRATIONS = "lb.registrations.v1"  # account bindings for the collectors (liveboard/kafka/registrations.py)
REDRIVE = "lb.redrive.v1"  # dead letters sent back through a collector's push path (liveboard/redrive.py)
FREEZE_REQUESTS = "lb.freeze_requests.v1"  # the board asks the scorer to freeze a round (liveboard/freeze_requests.py)
SCORER_INPUTS = "lb.scorer_inputs.v1"  # the staged scorer: fold workers -> ranking workers (services/scoring/staged.py)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    key: str
    description: str


@dataclass(frozen=True)
class Catalog:
    topics: tuple[TopicSpec, ...]

    def get(self, name: str) -> TopicSpec:
        for t in self.topics:
            if t.name == name:
                return t
        raise TopicError(f"topic {name!r} is not in the catalog {topic_catalog_path()}")


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or topic_catalog_path()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    schema = json.loads((contracts_dir() / "topics.schema.json").read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        lines = [f"{path}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]
        raise ConfigError("\n".join(lines))
    names = [t["name"] for t in doc["topics"]]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"{path}: topic declared twice: {', '.join(sorted(dupes))}")
    return Catalog(
        tuple(
            TopicSpec(t["name"], t["partitions"], t["retention_ms"], t["key"], t["description"]) for t in doc["topics"]
        )
    )


@dataclass
class EnsureReport:
    created: list[str]
    ok: list[str]
    mismatched: list[str]  # human-readable descriptions

    @property
    def success(self) -> bool:
        return not self.mismatched


async def ensure_topics(settings: Settings, catalog: Catalog | None = None) -> EnsureReport:
    """Create missing catalog topics; report existing ones whose partition count differs.

    A partition-count mismatch is reported, never silently ignored nor "fixed": adding partitions moves
    keys to other partitions and breaks per-contestant ordering, so it is an operator's decision.
    """
    catalog = catalog or load_catalog()
    admin = make_admin(settings)
    await admin.start()
    report = EnsureReport([], [], [])
    try:
        existing = await _partition_counts(admin, [settings.topic(t.name) for t in catalog.topics])
        missing = [t for t in catalog.topics if settings.topic(t.name) not in existing]
        if missing:
            new = [
                NewTopic(
                    settings.topic(t.name),
                    t.partitions,
                    settings.kafka_replication_factor,
                    topic_configs={"retention.ms": str(t.retention_ms)},
                )
                for t in missing
            ]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another process: checked below like the rest
            existing = await _partition_counts(admin, [settings.topic(t.name) for t in catalog.topics])
            report.created = [settings.topic(t.name) for t in missing]
        for t in catalog.topics:
            name = settings.topic(t.name)
            have = existing.get(name)
            if have is None:
                report.mismatched.append(f"{name}: missing after create")
            elif have != t.partitions:
                report.mismatched.append(f"{name}: has {have} partitions, catalog declares {t.partitions}")
            elif name not in report.created:
                report.ok.append(name)
    finally:
        await admin.close()
    return report


async def _partition_counts(admin, names: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    listed = set(await admin.list_topics())
    wanted = [n for n in names if n in listed]
    if not wanted:
        return {}
    counts: dict[str, int] = {}
    for d in await admin.describe_topics(wanted):
        if d.get("error_code", 0) == 0:
            counts[d["topic"]] = len(d["partitions"])
    return counts
