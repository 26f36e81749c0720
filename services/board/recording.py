"""What the operators' writes share (ops_api.py, decisions_api.py): the contest, round and contestant a request
names, its audit entry, producing manual events, and running the scorer's freeze command.

Freezing: the scorer owns ``round_frozen`` and services never import each other, so the board runs the
scorer's CLI (``LIVEBOARD_BOARD_FREEZE_COMMAND``, by default ``liveboard score freeze CONTEST ROUND``).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
from typing import Any, NamedTuple

from aiohttp import web

from liveboard.contracts.contest import iter_nodes
from liveboard.freeze_requests import new_request, wait_answer
from liveboard.kafka.catalog import FREEZE_REQUESTS
from services.board import queries
from services.board.auth import User
from services.board.contests import find_round
from services.board.context import BoardContext, ctx
from services.board.errors import not_found
from services.board.inputs import json_body, req_ident, text
from services.board.reqkeys import USER


def actor(request: web.Request) -> User:
    return request[USER]


def contest_round(
    c: BoardContext, contest_id: str, round_id: str | None, *, fields: tuple[str, str] = ("contest_id", "round_id")
) -> tuple[Any, Any]:
    """The board's contest and round (None without ``round_id``); 404 naming ``fields`` (where the request has
    them: ``contest``/``round`` in a query string)."""
    contest = c.contests.get(contest_id)
    if contest is None:
        raise not_found(f"{fields[0]}: no contest {contest_id!r} on the board", fields[0])
    if round_id is None:
        return contest, None
    rnd = find_round(contest, round_id)
    if rnd is None:
        raise not_found(f"{fields[1]}: contest {contest_id} has no round {round_id!r}", fields[1])
    return contest, rnd


QUERY = ("contest", "round")  # the field names of contest_round in a query string


def check_contestant(contest: Any, rnd: Any, contestant_id: str) -> None:
    p = contest.contestant(contestant_id)
    if p is None:
        raise not_found(f"contestant_id: no contestant {contestant_id!r} in contest {contest.id}", "contestant_id")
    if rnd is not None and p.group not in contest.round_groups(rnd):
        raise not_found(f"contestant_id: {contestant_id} is not in round {rnd.id}", "contestant_id")


def formula_components(contest: Any, rnd: Any, contestant_id: str) -> set[str]:
    """The component ids of the formula that scores ``contestant_id`` in ``rnd`` (the round's own formula when
    the contestant is not in the plan)."""
    p = contest.contestant(contestant_id)
    formula = contest.formula_for(rnd, p.group) if p is not None else rnd.scoring
    return {n.id for n in iter_nodes(formula)} if formula is not None else set()


def reason_approver(body: dict[str, Any]) -> tuple[str, str]:
    """A decision's required ``reason`` (理由, ≤ 2000 characters) and ``approver`` (批准人, ≤ 200)."""
    reason = text(body.get("reason"), "reason", max_len=2000)
    approver = text(body.get("approver"), "approver", max_len=200)
    assert reason is not None and approver is not None
    return reason, approver


class Posted(NamedTuple):
    """A JSON body naming a contest's round (and a contestant in it), each checked against the board's plan."""

    body: dict[str, Any]
    contest_id: str
    round_id: str
    contestant_id: str
    contest: Any
    rnd: Any


async def posted_round(request: web.Request, *, contestant: bool = False) -> Posted:
    """The body's ``contest_id`` and ``round_id`` (and ``contestant_id`` with ``contestant``): 400 when one is
    not an id, 404 when the board has no such contest, round or contestant in the round."""
    body = await json_body(request)
    contest_id = req_ident(body.get("contest_id"), "contest_id")
    round_id = req_ident(body.get("round_id"), "round_id")
    contestant_id = req_ident(body.get("contestant_id"), "contestant_id") if contestant else ""
    contest, rnd = contest_round(ctx(request), contest_id, round_id)
    if contestant:
        check_contestant(contest, rnd, contestant_id)
    return Posted(body, contest_id, round_id, contestant_id, contest, rnd)


async def audit(request: web.Request, action: str, **entry: Any) -> None:
    """The audit entry of an operator's action, by the signed-in operator (``entry``: the outcome, contest_id,
    target and detail of ``Audit.record``)."""
    await ctx(request).audit.record(request, actor=actor(request).username, role="operator", action=action, **entry)


async def publish(
    request: web.Request, c: BoardContext, events: list[Any], *, action: str, contest_id: str, round_id: str,
    target: str, detail: dict[str, Any], rounds: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Produce manual events and audit them; with ``rounds``, re-freeze the frozen rounds among them too."""
    by = actor(request).username
    sent = await c.writer.produce(events, actor=by, round_id=round_id)
    out: dict[str, Any] = {"events": [e.model_dump() for e in events], "sent": sent}
    detail = {**detail, "events": sent}
    if rounds is not None:
        frozen = sorted(set(rounds) & set((await queries.frozen_rounds(c.ch, contest_id)).keys()))
        refreezes = []
        for rid in frozen:
            after = [ev.event_id for ev in events]
            status, text_out, code, _how = await freeze_round(c, contest_id, rid, by, after=after)
            refreezes.append({"round_id": rid, "status": status, "detail": text_out[-2000:], "exit_code": code})
        detail["refreeze"] = [{k: r[k] for k in ("round_id", "status")} for r in refreezes]
        out.update(frozen_rounds=frozen, refreeze=refreezes)
    await audit(request, action, contest_id=contest_id, target=target, detail=detail)
    return out


async def freeze_round(
    c: BoardContext, contest_id: str, round_id: str, by: str, *, after: list[str] | None = None
) -> tuple[str, str, int | None, dict[str, Any]]:
    """Freeze a round (again, after the ``after`` decisions): done / pending / failed, the scorer's text, an
    exit code (0 done, 1 refused, None otherwise) and how it was asked (request id or argv), for the audit.

    ``freeze_via`` request (default): a request on ``lb.freeze_requests.v1`` that the scorer acts on and
    answers in ``freeze_answers``; command: the scorer's CLI as a subprocess."""
    wait_s = max(5, int(c.board.freeze_timeout_s) - 5)
    if c.board.freeze_via == "command":
        argv = scorer_argv(c, contest_id, round_id, by)
        if after:
            for event_id in after:
                argv += ["--after", event_id]
            argv += ["--wait", str(wait_s)]
        status, text_out, code = await run_scorer(c, argv)
        return status, text_out, code, {"argv": argv}
    req = new_request(contest_id, round_id, by, after=after or (), wait_s=float(wait_s))
    how = {"scorer_request_id": req.request_id}
    try:
        assert c.writer.producer is not None, "EventWriter.start() first"
        topic = c.settings.topic(FREEZE_REQUESTS)
        headers = [("type", b"freeze_request"), ("schema_version", b"1")]
        await asyncio.wait_for(c.writer.producer.send_and_wait(topic, req.encode(), key=req.key, headers=headers), 15)
    except Exception as exc:
        return "failed", f"freeze request not sent: {exc!r}", None, how
    answer = await wait_answer(c.ch, req.request_id, c.board.freeze_timeout_s)
    if answer is None:
        text_out = (
            f"the scorer has not answered freeze request {req.request_id} within "
            f"{c.board.freeze_timeout_s:.0f} s; it is answered once a scorer reads it (is the scorer running?)"
        )
        return "pending", text_out, None, how
    if answer["status"] == "done":
        return "done", answer["message"], 0, how
    return "failed", answer["message"], 1, how


def freeze_argv(template: str, contest_id: str, round_id: str, by: str) -> list[str]:
    argv = [part.format(contest=contest_id, round=round_id, by=by) for part in shlex.split(template)]
    if argv and argv[0] == "liveboard":
        # The same installation as this process, whether or not its bin/ is on PATH.
        exe = shutil.which("liveboard") or os.path.join(os.path.dirname(sys.executable), "liveboard")
        argv[0] = exe
    return argv


def scorer_argv(c: BoardContext, contest_id: str, round_id: str, by: str) -> list[str]:
    """The board's freeze command for this round (``LIVEBOARD_BOARD_FREEZE_COMMAND``)."""
    return freeze_argv(c.board.freeze_command, contest_id, round_id, by)


async def run_scorer(c: BoardContext, argv: list[str]) -> tuple[str, str, int | None]:
    """Run the scorer's command within the board's freeze timeout: done / pending (not available) / failed."""
    timeout_s = c.board.freeze_timeout_s
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
        )
    except OSError as exc:
        return "pending", f"freeze command not available ({exc}); run it on the scorer: {shlex.join(argv)}", None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return "failed", f"freeze command timed out after {timeout_s:.0f} s", None
    text_out = out.decode("utf-8", "replace")
    if proc.returncode == 0:
        return "done", text_out, 0
    # click answers 2 for an unknown command or group: the scorer's freeze is not installed here.
    if proc.returncode == 2 and ("No such command" in text_out or "No such option" in text_out):
        return "pending", f"{text_out.strip()}\nrun it on the scorer: {shlex.join(argv)}", 2
    return "failed", text_out, proc.returncode
