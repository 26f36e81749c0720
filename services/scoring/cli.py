"""``liveboard score run | explain | freeze`` and ``liveboard replay``.

liveboard score run                              # the streaming scorer (faust worker)
liveboard score explain CONTEST CONTESTANT [--round R] [--json]
liveboard score freeze CONTEST ROUND [--by NAME] [--json]
liveboard score slot CONTEST ROUND CONTESTANT --start T --end T [--reason TEXT] [--json]
liveboard replay --contest ID [--keep] [--json]
"""

from __future__ import annotations

import sys

import click
import orjson

from liveboard.logs import setup
from liveboard.settings import Settings, get_settings
from services.scoring.config import ScorerSettings


@click.group("score")
def score() -> None:
    """实时计分 / The streaming scorer: live scores, explanations, freezing rounds."""


@score.command("run")
@click.option("--intake", type=click.Choice(["faust", "direct"]), help="override LIVEBOARD_SCORER_INTAKE")
@click.option("--stage", type=click.Choice(["fold", "rank"]), help="staged topology: override LIVEBOARD_SCORER_STAGE")
@click.option("--worker", help="staged topology: this worker's slice i/N (override LIVEBOARD_SCORER_WORKER)")
def run(intake: str | None, stage: str | None = None, worker: str | None = None) -> None:
    """Consume lb.events.v1 and keep scores and leaderboards in ClickHouse (until SIGTERM/SIGINT)."""
    import faust

    from services.scoring.app import create_app

    settings = get_settings()
    setup("scoring", settings.log_level)
    cfg = ScorerSettings()
    if intake:
        cfg = cfg.model_copy(update={"intake": intake})
    if cfg.topology == "staged" or stage or worker:
        _run_staged(settings, cfg, stage, worker)
        return
    app = create_app(settings, cfg)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    )
    worker.spinner = None  # a terminal spinner writes escape codes into the JSON log
    worker.execute_from_commandline()


def _run_staged(settings: Settings, cfg: ScorerSettings, stage: str | None, worker: str | None) -> None:
    """A fold or ranking worker of the staged topology (services/scoring/staged.py)."""
    import asyncio

    from liveboard.errors import ConfigError
    from services.scoring.contests import load_plans
    from services.scoring.staged import parse_worker, run_fold, run_rank

    if cfg.topology != "staged":
        raise click.UsageError("--stage/--worker need LIVEBOARD_SCORER_TOPOLOGY=staged")
    stage = stage or cfg.stage
    if stage is None:
        raise click.UsageError("the staged topology needs --stage fold or --stage rank (or LIVEBOARD_SCORER_STAGE)")
    worker = worker or cfg.worker
    try:
        parse_worker(worker)
        plans = load_plans(cfg)
        runner = run_fold if stage == "fold" else run_rank
        asyncio.run(runner(settings, cfg, plans, worker))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@score.command("explain")
@click.argument("contest_id")
@click.argument("contestant_id")
@click.option("--round", "round_id", help="round id (default: every round the contestant has inputs in)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def explain(contest_id: str, contestant_id: str, round_id: str | None, as_json: bool) -> None:
    """得分说明 / A contestant's score down to the events behind it (rebuilt from the archive)."""
    from services.scoring.explain import explain_contestant, render

    settings = get_settings()
    doc = explain_contestant(settings, ScorerSettings(), contest_id, contestant_id, round_id)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str) + b"\n")
    else:
        click.echo(render(doc))


@score.command("freeze")
@click.argument("contest_id")
@click.argument("round_id")
@click.option("--by", "frozen_by", default="operator", show_default=True, help="who freezes (recorded)")
@click.option("--reason", help="why a frozen round is frozen again (default: the decisions' own reasons)")
@click.option("--after", "after", multiple=True, help="wait until this event id is archived first (repeatable)")
@click.option("--wait", "wait_s", default=60.0, show_default=True, help="seconds to wait for --after events")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def freeze(
    contest_id: str,
    round_id: str,
    frozen_by: str,
    reason: str | None,
    after: tuple[str, ...],
    wait_s: float,
    as_json: bool,
) -> None:
    """冻结轮次 / Record a round's final results for the notary (round_frozen + frozen_rounds); a frozen round
    with new decisions on it (upheld appeal, 取消资格, tie decision) is frozen again, chained to the last freeze."""
    import asyncio

    from services.scoring.freeze import freeze_round

    settings = get_settings()
    doc = asyncio.run(
        freeze_round(
            settings, ScorerSettings(), contest_id, round_id, frozen_by, reason=reason, after=after, wait_s=wait_s
        )
    )
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        return
    if doc["already_frozen"]:
        click.echo(f"{contest_id}/{round_id} was already frozen by {doc['frozen_by']}; the freeze is re-announced")
    elif doc.get("sequence", 1) > 1:
        click.echo(f"frozen again {contest_id}/{round_id} by {frozen_by}: freeze {doc['sequence']} ({doc['reason']})")
        click.echo(f"  previous_content_hash {doc['previous_content_hash']}")
        click.echo(f"  changed contestants {len(doc['changes'])}")
    else:
        click.echo(f"frozen {contest_id}/{round_id} by {frozen_by}")
    click.echo(f"  content_hash        {doc['content_hash']}")
    click.echo(f"  leaderboard_digest  {doc['leaderboard_digest']}")
    click.echo(f"  events              {doc['event_count']} round inputs")
    click.echo(f"  round_frozen event  {doc['event_id']}")


@score.command("slot")
@click.argument("contest_id")
@click.argument("round_id")
@click.argument("contestant_id")
@click.option("--start", required=True, help="slot start, ISO-8601 with offset (2020-09-26T09:00:00+08:00) or UTC ms")
@click.option("--end", required=True, help="slot end (exclusive), same forms")
@click.option("--reason", help="why the slot is set or moved (recorded)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def slot(
    contest_id: str, round_id: str, contestant_id: str, start: str, end: str, reason: str | None, as_json: bool
) -> None:
    """直播时段 / Set or move a contestant's live slot in a slot-limited round (a live_slot_assigned event);
    only live data inside it counts."""
    import asyncio

    from liveboard.logs import now_ms
    from services.scoring.decisions_cli import contest_context
    from services.scoring.freeze import plan_of
    from services.scoring.slots import parse_time, publish, slot_event

    settings = get_settings()
    plan = plan_of(ScorerSettings(), contest_id)
    ev = slot_event(
        plan.contest, round_id, contestant_id, parse_time(start, "start"), parse_time(end, "end"), reason, now_ms()
    )
    with contest_context(contest_id) as cx:  # a slot for nobody would be recorded and never count
        cx.contestant(contestant_id)
    asyncio.run(publish(settings, ev))
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(ev.model_dump(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        click.echo(f"live slot of {contestant_id} in {contest_id}/{round_id}: {start} → {end} (event {ev.event_id})")


@click.command("replay")
@click.option("--contest", "contest_id", required=True, help="contest id to rebuild")
@click.option("--database", help="target database (default replay_<contest id>)")
@click.option("--keep/--drop-first", default=False, help="keep an existing target database (default: recreate)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def replay(contest_id: str, database: str | None, keep: bool, as_json: bool) -> None:
    """重放 / Rebuild every projection of a contest from the archive into fresh tables; print the digests."""
    from services.scoring.replay import replay_contest

    settings = get_settings()
    setup("scoring", settings.log_level)
    report = replay_contest(settings, ScorerSettings(), contest_id, database=database, recreate=not keep)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        click.echo(
            f"replayed {report['events']} events of {contest_id} into {report['database']} "
            f"in {report['seconds']:.1f} s ({report['events_per_s']:.0f}/s)"
        )
        for r in report["rounds"]:
            live = r["live_digest"] or "-"
            same = (
                "same as live" if r["matches_live"] else ("no live leaderboard" if not r["live_digest"] else "DIFFERS")
            )
            click.echo(f"  {r['round_id']:<16} digest {r['digest']}  ({same}; live {live})")
            if r.get("frozen_digest"):
                ok = "reproduced" if r["frozen_reproduced"] else "NOT REPRODUCED"
                click.echo(f"  {'':<16} frozen {r['frozen_digest']}  ({ok})")
    if not report["ok"]:
        sys.exit(1)
