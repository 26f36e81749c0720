"""The board's HTTP API on the real stack: display endpoints, OpenAPI, metrics, validation, judges'
and operators' writes landing on lb.events.v1, and the operators' health report."""

from __future__ import annotations

import asyncio

import pytest

from liveboard.contracts import parse_event
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_consumer, make_producer
from services.board.api_v1 import routes
from services.board.auth import handler_roles
from tests.board import fixtures
from tests.board.conftest import JUDGE_PASSWORD, OPERATOR_PASSWORD, Board, Client
from tests.support import poll_until

pytestmark = pytest.mark.engines


async def test_openapi_lists_every_route_with_its_security(board: Board, client: Client) -> None:
    status, doc = await client.call("GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p): op for p, ops in doc["paths"].items() for m, op in ops.items()}
    served = {(r.method, r.path): r for r in routes()}
    assert set(documented) == set(served)
    for key, r in served.items():
        op = documented[key]
        assert op["operationId"] == r.operation_id
        roles = handler_roles(r.handler)
        needs_session = any("session" in s for s in op.get("security", []))
        assert needs_session == bool(roles), f"{key}: security {op.get('security')} vs roles {roles}"


async def test_leaderboard_json_totals_and_errors_naming_the_field(board: Board, client: Client) -> None:
    old = fixtures.now_ms() - 600_000
    totals = {"b01": "50.5", "b02": "61"}
    fixtures.insert_leaderboard(board.ch, board.contest_id, "final", "g2", totals, 1, last_data_ms=old)
    # announced as the scorer announces a version: the session's board may already hold this round (another
    # test's screen read it) and answers from that snapshot until lb.scores.v1 names the round again
    await board.produce_score_update(1)
    await board.wait_version("g2", 1)
    status, snap = await client.call("GET", f"/api/v1/contests/{board.contest_id}/rounds/final/leaderboard?group=g2")
    assert status == 200
    assert [r["contestant_id"] for r in snap["rows"]] == ["b02", "b01"]
    assert [r["rank"] for r in snap["rows"]] == [1, 2]
    assert snap["group_name"] == "创业组" and snap["contest_name"] == "测试直播带货大赛"
    assert snap["totals"]["gmv_fen"] == sum(r["gmv_fen"] for r in snap["rows"]) == 505_000 + 610_000
    # no feed rows and the scorer saw their last data 10 minutes ago: stale
    assert all(r["stale"] for r in snap["rows"])

    status, err = await client.call("GET", f"/api/v1/contests/{board.contest_id}/rounds/final/leaderboard?limit=x")
    assert status == 400 and err["error"]["field"] == "limit" and err["error"]["message"].startswith("limit:")
    status, err = await client.call("GET", f"/api/v1/contests/{board.contest_id}/rounds/nope/leaderboard")
    assert status == 404 and err["error"]["field"] == "round_id"
    status, err = await client.call("GET", f"/api/v1/contests/{board.contest_id}/rounds/final/leaderboard?group=zz")
    assert status == 404 and err["error"]["field"] == "group"
    status, err = await client.call("GET", "/api/v1/stream/leaderboard?round=final")
    assert status == 400 and err["error"]["field"] == "contest"
    status, err = await client.call("GET", "/api/v1/nothing-here")
    assert status == 404 and err["error"]["code"] == "not_found"


async def test_display_token_guards_display_endpoints(board: Board, client: Client) -> None:
    from pydantic import SecretStr

    board.board.display_token = SecretStr("screen-token-123")
    try:
        status, err = await client.call("GET", "/api/v1/contests")
        assert status == 401 and err["error"]["code"] == "display_token"
        status, _ = await client.call("GET", "/api/v1/contests?token=wrong")
        assert status == 401
        status, data = await client.call("GET", "/api/v1/contests?token=screen-token-123")
        assert status == 200 and any(c["id"] == board.contest_id for c in data["contests"])
        status, _ = await client.call("GET", "/api/v1/contests", headers={"Authorization": "Bearer screen-token-123"})
        assert status == 200
    finally:
        board.board.display_token = None


async def test_healthz_and_metrics(board: Board, client: Client) -> None:
    status, h = await client.call("GET", "/healthz")
    assert status == 200 and h["ok"] and h["checks"]["clickhouse"] == "ok" and h["checks"]["scores_consumer"] == "ok"
    async with client.http.get(board.url + "/metrics") as resp:
        text = await resp.text()
    assert resp.status == 200
    assert 'liveboard_board_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "liveboard_board_request_latency_seconds_bucket" in text
    assert "liveboard_board_sse_clients_count" in text


async def test_roles_sessions_and_csrf_are_enforced(board: Board) -> None:
    anon, judge, ops = Client(board.url), Client(board.url), Client(board.url)
    try:
        status, err = await anon.call("GET", "/api/v1/ops/health")
        assert status == 401 and err["error"]["code"] == "unauthenticated"
        status, _ = await anon.call("POST", "/api/v1/judge/scores", {})
        assert status == 401
        # login itself needs the form's CSRF token
        status, err = await anon.call("POST", "/api/v1/auth/login", {"username": board.judge, "password": "x" * 12})
        assert status == 403 and err["error"]["code"] == "csrf"

        assert (await judge.login(board.judge, JUDGE_PASSWORD))[0] == 200
        assert (await ops.login(board.operator, OPERATOR_PASSWORD))[0] == 200
        status, err = await judge.call("GET", "/api/v1/ops/health")
        assert status == 403 and "operator" in err["error"]["message"]
        status, _ = await judge.call("POST", "/api/v1/ops/judges", {"contest_id": board.contest_id, "judge_id": "x"})
        assert status == 403
        status, _ = await ops.call("GET", "/api/v1/judge/contestants")
        assert status == 403
        # a valid session without the CSRF header is refused, and the refusal is audited
        status, err = await ops.call("POST", "/api/v1/ops/items", {"contest_id": board.contest_id}, csrf=False)
        assert status == 403 and err["error"]["code"] == "csrf"
        status, err = await ops.call(
            "POST",
            "/api/v1/ops/items",
            {"contest_id": board.contest_id},
            headers={"X-CSRF-Token": "forged"},
            csrf=False,
        )
        assert status == 403 and err["error"]["code"] == "csrf"
        status, audit = await ops.call("GET", "/api/v1/ops/audit?action=csrf")
        assert any(e["actor"] == board.operator and e["outcome"] == "refused" for e in audit["entries"])
        # a tampered cookie is no session
        cookie = next(c for c in ops.http.cookie_jar if c.key == "lb_session")
        forged = Client(board.url)
        forged.http.cookie_jar.update_cookies({"lb_session": cookie.value[:-3] + "abc"})
        status, _ = await forged.call("GET", "/api/v1/auth/session")
        await forged.close()
        assert status == 401
        # logout ends the session in this browser
        status, _ = await judge.call("POST", "/api/v1/auth/logout", {})
        assert status == 200
        status, _ = await judge.call("GET", "/api/v1/judge/contestants")
        assert status == 401
    finally:
        for c in (anon, judge, ops):
            await c.close()


async def test_login_is_throttled_per_ip_and_user(board: Board) -> None:
    c = Client(board.url)
    try:
        victim = board.judge_g2
        for _ in range(board.board.login_max_failures):
            status, err = await c.login(victim, "wrong-password")
            assert status == 401 and err["error"]["code"] == "bad_credentials"
        status, err = await c.login(victim, JUDGE_PASSWORD)  # even the right password is refused now
        assert status == 429 and err["error"]["code"] == "too_many_attempts"
        status, audit = await login_audit(board)
        assert any(e["actor"] == victim and e["outcome"] == "throttled" for e in audit["entries"])
        assert any(e["actor"] == victim and e["outcome"] == "failed" for e in audit["entries"])
    finally:
        board.ctx.throttle.succeeded("127.0.0.1", board.judge_g2)
        await c.close()


async def login_audit(board: Board) -> tuple[int, dict]:
    ops = Client(board.url)
    try:
        assert (await ops.login(board.operator, OPERATOR_PASSWORD))[0] == 200
        return await ops.call("GET", "/api/v1/ops/audit?action=login&limit=100")
    finally:
        await ops.close()


async def test_reissued_credential_ends_old_sessions(board: Board) -> None:
    ops, judge = Client(board.url), Client(board.url)
    try:
        await ops.login(board.operator, OPERATOR_PASSWORD)
        status, res = await ops.call(
            "POST", "/api/v1/ops/judges", {"contest_id": board.contest_id, "judge_id": "j9", "groups": ["g1"]}
        )
        assert status == 201 and res["user"]["username"] == f"{board.contest_id}.j9"
        first = res["password"]
        assert (await judge.login(res["user"]["username"], first))[0] == 200
        assert (await judge.call("GET", "/api/v1/judge/contestants"))[0] == 200
        status, res2 = await ops.call(
            "POST", "/api/v1/ops/judges", {"contest_id": board.contest_id, "judge_id": "j9", "groups": ["g1"]}
        )
        assert status == 201 and res2["password"] != first
        board.ctx.users._cache.clear()  # the 2 s credential cache, not what is being tested
        status, _ = await judge.call("GET", "/api/v1/judge/contestants")
        assert status == 401
        again = Client(board.url)
        assert (await again.login(res["user"]["username"], first))[0] == 401
        await again.close()
        status, err = await ops.call(
            "POST", "/api/v1/ops/judges", {"contest_id": board.contest_id, "judge_id": "j9", "groups": ["nope"]}
        )
        assert status == 400 and err["error"]["field"] == "groups[0]"
        status, users = await ops.call("GET", "/api/v1/ops/users")
        assert all("password_hash" not in u for u in users["users"])
    finally:
        await ops.close()
        await judge.close()


async def test_judge_scores_are_checked_server_side_and_produced_as_events(board: Board) -> None:
    judge, ops = Client(board.url), Client(board.url)
    try:
        await judge.login(board.judge, JUDGE_PASSWORD)
        await ops.login(board.operator, OPERATOR_PASSWORD)
        base = {"round_id": "final", "contestant_id": "a02"}
        status, err = await judge.call("POST", "/api/v1/judge/scores", {**base, "scores": {"pitch": "20.5"}})
        assert status == 400 and err["error"]["field"] == "scores.pitch" and "20" in err["error"]["message"]
        status, err = await judge.call("POST", "/api/v1/judge/scores", {**base, "scores": {"pitch": "-1"}})
        assert status == 400 and err["error"]["field"] == "scores.pitch"
        status, err = await judge.call("POST", "/api/v1/judge/scores", {**base, "scores": {"charm": "5"}})
        assert status == 400 and err["error"]["field"] == "scores.charm"
        status, err = await judge.call("POST", "/api/v1/judge/scores", {**base, "scores": {}})
        assert status == 400 and err["error"]["field"] == "scores"
        status, err = await judge.call("POST", "/api/v1/judge/scores", {**base, "round_id": "semi", "scores": {}})
        assert status == 404 and err["error"]["field"] == "round_id"
        status, err = await judge.call(
            "POST", "/api/v1/judge/scores", {"round_id": "final", "contestant_id": "b01", "scores": {"pitch": "3"}}
        )
        assert status == 403  # b01 is in group g2; this judge scores g1
        async with judge.http.post(
            board.url + "/api/v1/judge/scores", data="x", headers={"X-CSRF-Token": judge.csrf}
        ) as r:
            assert r.status == 415

        start = await board.events_end_offsets()
        status, res = await judge.call(
            "POST", "/api/v1/judge/scores", {**base, "scores": {"appearance": "7.5", "pitch": 18}}
        )
        assert status == 201, res
        events = [e for e in await board.read_events(start, 2) if e["contestant_id"] == "a02"]
        assert {(e["data"]["criterion"], e["data"]["points"], e["data"]["max_points"]) for e in events} == {
            ("appearance", "7.5", "10"),
            ("pitch", "18", "20"),
        }
        for e in events:
            model = parse_event({k: v for k, v in e.items() if not k.startswith("_")})
            assert model.type == "judge_score" and model.data.judge_id == "j1"
            assert e["_key"] == f"{board.contest_id}:a02" and e["_headers"]["type"] == "judge_score"
        assert {e["event_id"] for e in events} == {x["event_id"] for x in res["events"]}

        # a correction is a new event, and the latest one counts
        status, res2 = await judge.call("POST", "/api/v1/judge/scores", {**base, "scores": {"pitch": "19"}})
        assert status == 201 and res2["events"][0]["event_id"] not in {x["event_id"] for x in res["events"]}
        status, mine = await judge.call("GET", "/api/v1/judge/scores?round=final&contestant=a02")
        assert mine["mine"]["pitch"]["points"] == "19" and mine["mine"]["appearance"]["points"] == "7.5"
        assert [h["points"] for h in mine["history"] if h["criterion"] == "pitch"] == ["18", "19"]
        assert mine["others_visible"] is False and mine["others"] is None

        # another judge's scores stay hidden until the operator closes the item
        status, j3 = await ops.call("POST", "/api/v1/ops/judges", {"contest_id": board.contest_id, "judge_id": "j3"})
        other = Client(board.url)
        await other.login(j3["user"]["username"], j3["password"])
        status, _ = await other.call("POST", "/api/v1/judge/scores", {**base, "scores": {"pitch": "12"}})
        assert status == 201
        status, view = await judge.call("GET", "/api/v1/judge/scores?round=final&contestant=a02")
        assert view["others"] is None
        status, _ = await ops.call(
            "POST",
            "/api/v1/ops/items",
            {"contest_id": board.contest_id, "round_id": "final", "contestant_id": "a02", "state": "closed"},
        )
        assert status == 200
        status, view = await judge.call("GET", "/api/v1/judge/scores?round=final&contestant=a02")
        assert view["item_state"] == "closed" and view["others_visible"] is True
        assert {(o["judge_id"], o["criterion"], o["points"]) for o in view["others"]} == {("j3", "pitch", "12")}
        # and a closed item takes no more scores
        status, err = await judge.call("POST", "/api/v1/judge/scores", {**base, "scores": {"pitch": "1"}})
        assert status == 409 and err["error"]["code"] == "item_closed"
        await other.close()
    finally:
        await judge.close()
        await ops.close()


async def test_adjustment_is_an_event_with_reason_and_approver_and_is_audited(board: Board) -> None:
    ops = Client(board.url)
    try:
        await ops.login(board.operator, OPERATOR_PASSWORD)
        body = {
            "contest_id": board.contest_id,
            "round_id": "final",
            "contestant_id": "a03",
            "kind": "delta",
            "value": "-2.5",
            "component": "quality",
            "reason": "申诉成立：直播中出现违规话术",
            "approver": "仲裁委员会 王主任",
        }
        status, err = await ops.call("POST", "/api/v1/ops/adjustments", {**body, "kind": "bonus"})
        assert status == 400 and err["error"]["field"] == "kind"
        status, err = await ops.call("POST", "/api/v1/ops/adjustments", {**body, "component": "nope"})
        assert status == 400 and err["error"]["field"] == "component"
        status, err = await ops.call("POST", "/api/v1/ops/adjustments", {**body, "approver": ""})
        assert status == 400 and err["error"]["field"] == "approver"
        start = await board.events_end_offsets()
        status, res = await ops.call("POST", "/api/v1/ops/adjustments", {**body, "adjustment_id": "appeal-7"})
        assert status == 201
        events = [e for e in await board.read_events(start, 1) if e["type"] == "score_adjustment"]
        assert len(events) == 1
        d = events[0]["data"]
        assert (d["adjustment_id"], d["kind"], d["value"], d["component"], d["reason"], d["approver"]) == (
            "appeal-7",
            "delta",
            "-2.5",
            "quality",
            body["reason"],
            body["approver"],
        )
        assert events[0]["event_id"] == res["event_id"]
        status, listed = await ops.call("GET", f"/api/v1/ops/adjustments?contest={board.contest_id}")
        assert any(a["event_id"] == res["event_id"] and a["actor"] == board.operator for a in listed["adjustments"])
        status, audit = await ops.call("GET", "/api/v1/ops/audit?action=score_adjustment")
        entry = next(e for e in audit["entries"] if e["detail"].get("adjustment_id") == "appeal-7")
        assert entry["actor"] == board.operator and entry["role"] == "operator"
        assert entry["remote_addr"] == "127.0.0.1" and entry["target"] == "final/a03"
        assert entry["detail"]["approver"] == body["approver"] and entry["at_ms"] > 0
    finally:
        await ops.close()


async def test_freeze_runs_the_scorer_command_or_records_a_pending_request(board: Board) -> None:
    ops = Client(board.url)
    saved = board.board.freeze_command
    board.board.freeze_via = "command"  # the CLI path (the default, a request the scorer answers: test_decisions_api)
    try:
        await ops.login(board.operator, OPERATOR_PASSWORD)
        req = {"contest_id": board.contest_id, "round_id": "final"}
        board.board.freeze_command = "/nonexistent/liveboard-score-freeze {contest} {round}"
        status, res = await ops.call("POST", "/api/v1/ops/freeze", req)
        assert status == 202 and res["status"] == "pending" and "run it on the scorer" in res["detail"]
        board.board.freeze_command = "/bin/sh -c 'echo froze $0 $1 by $2; exit 0' {contest} {round} {by}"
        status, res = await ops.call("POST", "/api/v1/ops/freeze", req)
        assert status == 200 and res["status"] == "done"
        assert f"froze {board.contest_id} final by {board.operator}" in res["detail"]
        board.board.freeze_command = "/bin/sh -c 'echo no such round >&2; exit 1'"
        status, res = await ops.call("POST", "/api/v1/ops/freeze", req)
        assert status == 502 and res["status"] == "failed" and "no such round" in res["detail"]
        status, rounds = await ops.call("GET", f"/api/v1/ops/rounds?contest={board.contest_id}")
        statuses = {q["status"] for q in rounds["rounds"][0]["freeze_requests"]}
        assert {"pending", "done", "failed"} <= statuses
    finally:
        board.board.freeze_command = saved
        board.board.freeze_via = "request"
        await ops.close()


async def test_health_report_lag_ingest_metrics_dead_letters(board: Board) -> None:
    now = fixtures.now_ms()
    fixtures.insert_feed(board.ch, board.contest_id, "a01", "room-h1", now)
    fixtures.insert_feed(board.ch, board.contest_id, "a04", "room-h4", now - 600_000)
    for i in range(3):
        fixtures.insert_dead_letter(board.ch, f"{board.contest_id}-dl{i}", "schema: data.gmv_fen must be ≥ 0", now)
    fi = board.ingest
    fi.requests.labels("douyin", "live_stats", "ok").inc(90)
    fi.requests.labels("douyin", "live_stats", "http_5xx").inc(10)
    fi.errors.labels("douyin", "live_stats", "http_5xx").inc(10)
    fi.rejected.labels("douyin", "unknown_account").inc(4)

    # the scorer group has committed part of lb.events.v1: produce a few events, commit 2 short of the end
    producer = make_producer(board.settings, linger_ms=0)
    await producer.start()
    for i in range(5):
        await producer.send_and_wait(board.settings.topic(EVENTS), b'{"x":%d}' % i, key=b"lag:test", partition=0)
    await producer.stop()
    ends = await board.events_end_offsets()
    committed = {tp: max(0, end - 2) for tp, end in ends.items()}
    consumer = make_consumer(board.settings, group_id=board.board.scorer_group_id)
    await consumer.start()
    try:
        consumer.assign(list(committed))
        await consumer.commit(dict(committed))
    finally:
        await consumer.stop()
    expected_lag = sum(ends[tp] - committed[tp] for tp in ends)
    set_up_ms = fixtures.now_ms()

    ops = Client(board.url)
    try:
        await ops.login(board.operator, OPERATOR_PASSWORD)

        async def report() -> dict:
            status, h = await ops.call("GET", f"/api/v1/ops/health?contest={board.contest_id}")
            assert status == 200, h
            return h

        # the report is cached for a moment: poll until one made after the rows and the commit above answers
        async def fresh() -> dict | None:
            h = await report()
            return h if h["generated_at"] >= set_up_ms else None

        h = await poll_until(fresh, 30, 0.05)
        assert h is not None, "no health report made after the set-up within 30 s"
        feeds = {f["room_id"]: f for f in h["feeds"]}
        assert feeds["room-h1"]["stale"] is False and feeds["room-h4"]["stale"] is True
        kinds = [a["kind"] for a in h["alerts"]]
        assert any(a["kind"] == "stale_feed" and a["room_id"] == "room-h4" for a in h["alerts"])
        assert not any(a["kind"] == "stale_feed" and a["room_id"] == "room-h1" for a in h["alerts"])
        assert "dlq_growth" in kinds and h["dead_letters"]["in_window"] >= 3
        assert any(d["reason"].startswith("schema:") for d in h["dead_letters"]["recent"])
        assert h["lag"]["group_id"] == board.board.scorer_group_id and h["lag"]["total"] == expected_lag
        ends_by_p = {tp.partition: e for tp, e in ends.items()}
        for p in h["lag"]["partitions"]:
            assert p["end_offset"] == ends_by_p[p["partition"]]
        douyin = next(p for p in h["platforms"] if p["platform"] == "douyin")
        assert douyin["ingest"]["requests"] == 100 and douyin["ingest"]["errors"] == 10
        assert douyin["ingest"]["pushes_rejected"] == 4 and douyin["ingest"]["error_ratio"] == pytest.approx(0.1)
        assert {"platform": "douyin", "reason": "unknown_account", "count": 4} in h["ingest"]["rejected"]
        # a second scrape turns counters into recent rates
        fi.errors.labels("douyin", "live_stats", "http_5xx").inc(30)
        fi.requests.labels("douyin", "live_stats", "http_5xx").inc(30)
        # Not a synchronisation wait: rates are measured between two scrapes at least 1 s apart (ops_monitor),
        # so the next report must be made that long after the first (asking sooner would restart the window).
        await asyncio.sleep(1.1)
        status, h2 = await ops.call("GET", f"/api/v1/ops/health?contest={board.contest_id}")
        assert status == 200 and h2["generated_at"] - h["generated_at"] >= 1000, h2
        douyin = next(p for p in h2["platforms"] if p["platform"] == "douyin")
        assert douyin["ingest"]["recent_error_ratio"] == pytest.approx(1.0)
        assert any(a["kind"] == "error_rate" for a in h2["alerts"])
    finally:
        await ops.close()
