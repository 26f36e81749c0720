"""Scorer settings: ``LIVEBOARD_SCORER_*`` environment variables (or the ``.env`` file ``Settings`` reads).

Kafka, ClickHouse and the HTTP port (``LIVEBOARD_SCORER_PORT``) come from the shared
``liveboard.settings.Settings``; what only the scorer needs lives here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from liveboard.paths import contests_dir

_ID = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"


class ScorerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVEBOARD_SCORER_",
        env_file=os.environ.get("LIVEBOARD_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- contests ---------------------------------------------------------------------------------
    contests_dir: Path = Field(default_factory=contests_dir, description="folder of contest files (*.yaml)")
    contest_files: list[Path] = Field(
        default_factory=list, description="explicit contest files (JSON list); replaces contests_dir when set"
    )
    contests: list[str] = Field(
        default_factory=list, description="score only these contest ids (JSON list); empty = every loaded file"
    )
    round_override: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"contest_id": "round_id"}: every data event of the contest counts in that round, '
        "whatever its time (rehearsals and demos replaying old data)",
    )

    # --- Kafka intake ----------------------------------------------------------------------------
    app_id: str = Field("liveboard-scorer", pattern=_ID, description="faust app id = consumer group id")
    intake: Literal["direct", "faust"] = Field(
        "direct",
        description="direct (default): one aiokafka consumer inside the faust app, in batches, committing exactly "
        "the offsets whose rows ClickHouse has taken; faust: faust agents (one message at a time through faust's "
        "stream, acknowledged after the write; slower, and faust itself acknowledges messages it skips during a "
        "rebalance, and faust 0.15.3 can drop input that arrives while it finishes recovery after a start or a "
        "rebalance — not for a contest that counts; see docs/scoring.md)",
    )
    assignment: Literal["explicit", "group"] = Field(
        "explicit",
        description="how the direct intake gets its partitions. explicit (default): it assigns itself every "
        "partition of lb.events.v1 and lb.dlq.v1 (relative normalisation needs the whole field, so one scorer "
        "holds them all anyway) and commits to the app id's group: no group join, so a restarted scorer "
        "resumes at once instead of waiting for the dead member's session to expire (13-26 s measured on "
        "tansu); run ONE scorer per app id. group: subscribe in the consumer group (a second scorer gets part "
        "of the topic and stops ranking until it holds every partition again)",
    )
    # --- topology (issue 13; services/scoring/staged.py, docs/scoring.md "Staged topology") -------
    topology: Literal["single", "staged"] = Field(
        "single",
        description="single (default): one scorer folds and ranks everything; staged: fold workers (--stage fold) "
        "and ranking workers (--stage rank) connected by lb.scorer_inputs.v1",
    )
    stage: Literal["fold", "rank"] | None = Field(None, description="staged topology: which stage this process runs")
    worker: str = Field("0/1", pattern=r"^[0-9]+/[0-9]+$", description="staged topology: i/N, this worker's slice")
    checkpoint_interval_s: float = Field(
        60.0,
        gt=0,
        description="staged ranking worker: write a checkpoint (scorer_rank_checkpoints) at most this long after "
        "the last one once new records were read, so a restart reads lb.scorer_inputs.v1 only from there",
    )
    checkpoint_records: int = Field(
        200_000, ge=1, description="staged ranking worker: or as soon as this many records were read since the last one"
    )
    batch_max: int = Field(5000, ge=1, description="events handed to the processor at once")
    batch_within_ms: int = Field(20, ge=1, description="wait at most this long to fill a batch")
    dedup_capacity: int = Field(
        500_000, ge=1000, description="event ids remembered to drop duplicates early (state merges are idempotent)"
    )

    # --- recompute -------------------------------------------------------------------------------
    coalesce_ms: int = Field(
        100, ge=0, le=5000, description="after the first change, wait this long for more before recomputing"
    )
    update_top_n: int = Field(10, ge=0, le=1000, description="rows per group carried in a lb.scores.v1 update")

    # --- ClickHouse sink -------------------------------------------------------------------------
    flush_interval_ms: int = Field(
        500, ge=50, description="at most one insert per table per interval (each insert makes a part)"
    )
    scores_interval_ms: int = Field(
        5000, ge=100, description="explained score rows are written at most this often (newest per contestant)"
    )
    flush_max_rows: int = Field(50_000, ge=100, description="flush early when this many archive rows wait")
    max_pending_rows: int = Field(
        100_000, ge=1000, description="stop consuming while this many rows wait (e.g. ClickHouse is down)"
    )
    retry_base_s: float = Field(0.5, gt=0)
    retry_cap_s: float = Field(10.0, gt=0)

    # --- operations ------------------------------------------------------------------------------
    stall_after_s: float = Field(
        60.0, gt=0, description="/healthz fails when lag > 0 and no partition advanced for this long"
    )
    data_dir: Path | None = Field(None, description="faust's state folder (default <LIVEBOARD_HOME>/scorer)")

    @field_validator("contests")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        import re

        for x in v:
            if not re.match(_ID, x):
                raise ValueError(f"{x!r} is not a contest id")
        return v


def get_scorer_settings(**overrides: object) -> ScorerSettings:
    return ScorerSettings(**overrides)  # type: ignore[arg-type]
