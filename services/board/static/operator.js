// The operators' console: ingestion health (refreshed every 3 s), judging state and the writes an
// operator makes (credentials, items, stage, adjustments, freeze). Every write goes through the API
// with the session's CSRF token; the server audits it.
"use strict";

(() => {
  const { t, int, pct, time, dateTime, duration, el, api, yuan } = LB;
  LB.translate();
  LB.langLink(document.getElementById("lang"));
  document.getElementById("logout").onclick = LB.logout;

  let contests = [];
  let contestId = LB.params.get("contest") || null;
  let roundsDoc = null;

  const tbody = (id) => document.querySelector(`#${id} tbody`);
  const contest = () => contests.find((c) => c.id === contestId);

  // rooms are named by their contestant (name + platform); the room id stays in a tooltip
  const who = (x) => `${x.display_name || x.contestant_id || x.room_id} · ${t(x.platform)}`;
  const sep = LB.lang === "en" ? ": " : "：";
  function alertText(a) {
    switch (a.kind) {
      case "stale_feed": return `${t("stale")}${sep}${who(a)} · ${duration(a.age_s * 1000)}`;
      case "stale_room": return `${t("stale")}${sep}${a.display_name ? who(a) : t(a.platform) + " · " + a.room_id} · ${duration(a.age_s * 1000)}`;
      case "dlq_growth": return `${t("dead_letters")}${sep}${a.count} / ${duration(a.window_s * 1000)}`;
      case "scorer_lag": return `${t("lag")}${sep}${int(a.lag)} (${a.group_id})`;
      case "lag_unknown": return `${t("lag_unknown")}`;
      case "error_rate": return `${t("error_rate")}${sep}${t(a.platform)} ${(a.ratio * 100).toFixed(1)}%`;
      case "ingest_unreachable": return `${t("ingest_unreachable")}${sep}${a.url}`;
      default: return t(a.kind);
    }
  }

  async function alertAction(a, action) {
    const body = { key: a.key, action };
    if (action === "mute") {
      const m = prompt(t("mute_minutes"), "30");
      if (!m) return;
      body.minutes = Number(m);
    }
    try { await api("POST", "/api/v1/ops/alerts", body); } catch (e) { alert(LB.errorText(e)); }
    await refreshHealth();
  }

  function alertItem(a) {
    const ack = a.acknowledged, mute = a.muted;
    return el("li", { class: "alert" + (ack ? " acked" : "") + (mute ? " muted" : ""), "data-kind": a.kind, "data-key": a.key,
      title: [a.room_id, a.error].filter(Boolean).join(" · ") || null },
    el("span", { class: "badge " + (a.severity === "critical" ? "bad" : "warn") }, t(a.severity)), " ", alertText(a), " ",
    ack ? el("span", { class: "muted ack-by" }, `${t("acknowledged")} · ${ack.by} · ${time(ack.at_ms)} `) : null,
    mute ? el("span", { class: "muted mute-by" }, `${t("muted_until")} ${time(mute.until_ms)} · ${mute.by} `) : null,
    mute ? el("button", { class: "link unmute", onclick: () => alertAction(a, "unmute") }, t("unmute"))
      : [ack ? null : el("button", { class: "link ack", onclick: () => alertAction(a, "ack") }, t("ack")), " ",
        el("button", { class: "link mute", onclick: () => alertAction(a, "mute") }, t("mute"))]);
  }

  function tokenCell(p) {
    const left = p.token_expires_at - (p.heartbeat_at || p.token_expires_at);
    return el("span", { class: left < 600000 ? "badge warn" : "", title: dateTime(p.token_expires_at) },
      `${time(p.token_expires_at)} · ${t("token_left")} ${duration(Math.max(0, left))}`);
  }

  async function refreshHealth() {
    const q = contestId ? "?contest=" + encodeURIComponent(contestId) : "";
    const h = await api("GET", "/api/v1/ops/health" + q);
    const alerts = document.getElementById("alerts");
    alerts.replaceChildren(...(h.alerts.length ? h.alerts.map(alertItem) : [el("li", { class: "muted" }, t("no_alerts"))]),
      ...((h.muted_alerts || []).length ? [el("li", { class: "muted muted-head" }, `${t("muted_alerts")}（${h.muted_alerts.length}）`),
        ...h.muted_alerts.map(alertItem)] : []));
    tbody("platforms").replaceChildren(...h.platforms.map((p) => {
      const i = p.ingest || {};
      return el("tr", { "data-platform": p.platform },
        el("td", {}, t(p.platform)), el("td", { class: "num" }, int(p.feeds)), el("td", { class: "num" }, int(p.stale)),
        el("td", { class: "num" }, p.feeds ? duration(p.max_age_ms) : "–"), el("td", { class: "num" }, int(i.requests)),
        el("td", { class: "num" }, int(i.errors)),
        el("td", { class: "num" }, i.requests ? ((i.recent_error_ratio ?? i.error_ratio) * 100).toFixed(1) + "%" : "–"),
        el("td", { class: "num" }, int(i.pushes_rejected)),
        // the collector's own figures from its heartbeat (collector clock), and dead letters in the window
        el("td", { class: "num finished" }, int(p.finished)),
        el("td", { class: "last-ok" }, p.last_ok_at ? time(p.last_ok_at) : "–"),
        el("td", { class: "token" }, p.token_expires_at ? tokenCell(p) : "–"),
        el("td", { class: "num quota" }, p.quota_remaining === null || p.quota_remaining === undefined ? "–" : int(p.quota_remaining)),
        el("td", { class: "num dlq" }, int(p.dead_letters)));
    }));
    document.getElementById("ingest-state").textContent = h.ingest.reachable
      ? `${h.ingest.url} ✓` : `${t("ingest_unreachable")}: ${h.ingest.url}`;
    tbody("feeds").replaceChildren(...h.feeds.filter((f) => f.active).map((f) => el("tr", {
      class: "feed" + (f.stale ? " stale" : "") + (f.finished ? " finished" : ""), "data-contestant": f.contestant_id, "data-room": f.room_id,
    },
    el("td", { title: f.contestant_id }, f.display_name || f.contestant_id), el("td", {}, t(f.platform)), el("td", {}, f.room_id),
    el("td", { class: "num" }, duration(f.ingest_age_ms)), el("td", { class: "num" }, int(f.events)),
    el("td", {}, time(f.last_ingested_at)),
    el("td", {}, f.stale ? el("span", { class: "badge bad stale-flag" }, t("stale"))
      : f.finished ? el("span", { class: "badge info finished-flag", title: dateTime(f.ended_at) }, t("finished"))
        : el("span", { class: "badge ok" }, t("ok"))))));
    tbody("dlq").replaceChildren(...h.dead_letters.recent.map((d) => el("tr", {},
      el("td", {}, dateTime(d.received_at)), el("td", {}, t(d.platform)), el("td", { title: d.source }, t("src_" + d.source) === "src_" + d.source ? d.source : t("src_" + d.source)),
      el("td", {}, d.reason))));
    document.getElementById("lag-group").textContent = h.lag.group_id;
    document.getElementById("lag-total").textContent = h.lag.total === null ? (h.lag.error || "–") : int(h.lag.total);
    tbody("lag").replaceChildren(...h.lag.partitions.map((p) => el("tr", {},
      el("td", {}, p.partition), el("td", { class: "num" }, int(p.end_offset)),
      el("td", { class: "num" }, p.committed === null ? "–" : int(p.committed)), el("td", { class: "num" }, int(p.lag)))));
  }

  async function refreshRounds() {
    if (!contestId) return;
    roundsDoc = await api("GET", "/api/v1/ops/rounds?contest=" + encodeURIComponent(contestId));
    const box = document.getElementById("rounds");
    box.replaceChildren(...roundsDoc.rounds.map((r) => el("div", { class: "round", "data-round": r.id },
      el("h3", {}, `${r.name} `,
        r.frozen ? el("span", { class: "badge bad" }, t("frozen")) : el("button", {
          class: "secondary", onclick: () => freeze(r.id),
        }, t("freeze")),
        // a frozen round is published: its 公示 page (exports, certificates) — docs/organisers.md
        r.frozen ? el("a", { class: "publication-link", href: `/publication?contest=${encodeURIComponent(contestId)}&round=${encodeURIComponent(r.id)}` }, " ", t("publication_page")) : null,
        ...r.freeze_requests.slice(0, 1).map((q) => el("span", { class: "muted" }, ` ${t(q.status + "_status")} · ${q.requested_by} · ${time(q.requested_at)}`))),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, t("contestant")), el("th", {}, t("groups")), el("th", {}, t("state")), el("th", {}))),
        el("tbody", {}, ...r.items.map((it) => el("tr", { "data-contestant": it.contestant_id },
          el("td", {}, it.display_name, r.on_stage === it.contestant_id ? el("span", { class: "badge info" }, " ", t("on_stage")) : null),
          el("td", {}, it.group_id),
          el("td", {}, el("span", { class: "badge " + (it.state === "closed" ? "warn" : "ok") }, t(it.state))),
          el("td", {},
            el("button", { class: "secondary", onclick: () => post("/api/v1/ops/stage", { contest_id: contestId, round_id: r.id, contestant_id: it.contestant_id }) }, t("set_stage")), " ",
            el("button", {
              class: "secondary",
              onclick: () => post("/api/v1/ops/items", { contest_id: contestId, round_id: r.id, contestant_id: it.contestant_id, state: it.state === "closed" ? "open" : "closed" }),
            }, t(it.state === "closed" ? "reopen_item" : "close_item"))))))))));
    const aRound = document.getElementById("a-round");
    if (!aRound.options.length || aRound.dataset.contest !== contestId) {
      aRound.dataset.contest = contestId;
      aRound.replaceChildren(...roundsDoc.rounds.map((r) => el("option", { value: r.id }, r.name)));
      aRound.onchange = fillContestants;
      fillContestants();
    }
  }

  function fillContestants() {
    const r = roundsDoc.rounds.find((x) => x.id === document.getElementById("a-round").value);
    document.getElementById("a-contestant").replaceChildren(...(r ? r.items : []).map((it) =>
      el("option", { value: it.contestant_id }, `${it.display_name} (${it.contestant_id})`)));
  }

  async function post(path, body) {
    try {
      await api("POST", path, body);
    } catch (e) {
      alert(LB.errorText(e));
    }
    await refreshRounds();
  }

  async function freeze(roundId) {
    if (!confirm(t("confirm_freeze"))) return;
    try {
      const res = await api("POST", "/api/v1/ops/freeze", { contest_id: contestId, round_id: roundId });
      alert(`${res.status}\n${res.detail || ""}`);
    } catch (e) {
      alert(LB.errorText(e));
    }
    await refreshRounds();
  }

  // 对账: the sales ledger against the platform's own totals (services/board/reconcile_api.py)
  function explaining(o) {
    const parts = [];
    for (const r of o.late_refunds || []) parts.push(`${t("late_refund")} ${r.order_id}/${r.refund_id} ${yuan(r.amount_fen)}`);
    for (const r of o.held_refunds || []) parts.push(`${t("held_refund")} ${r.order_id}/${r.refund_id} ${yuan(r.amount_fen)}`);
    for (const r of o.over_refunds || []) parts.push(`${t("over_refund")} ${r.order_id} ${yuan(r.excess_fen)}`);
    for (const r of o.refunded_orders || []) parts.push(`${t("refunded_order")} ${r.order_id} ${yuan(r.refund_fen)}`);
    return parts.join("; ") || "–";
  }

  async function refreshReconciliation() {
    if (!contestId) return;
    const d = await api("GET", "/api/v1/ops/reconciliation?contest=" + encodeURIComponent(contestId));
    tbody("recon").replaceChildren(...(d.rows.length ? d.rows.map((r) => el("tr", {
      class: "recon" + (r.mismatch ? " stale" : ""), "data-contestant": r.contestant_id, "data-platform": r.platform,
    },
    el("td", {}, r.round_id), el("td", {}, `${r.display_name} (${r.contestant_id})`), el("td", {}, t(r.platform)),
    el("td", { class: "num" }, yuan(r.ledger_gmv_fen)),
    el("td", { class: "num" }, r.snapshot_gmv_fen === null ? "–" : yuan(r.snapshot_gmv_fen)),
    el("td", { class: "num" }, int(r.ledger_orders_paid)),
    el("td", { class: "num" }, r.snapshot_orders_paid === null ? "–" : int(r.snapshot_orders_paid)),
    el("td", { title: r.reasons.join(", ") }, r.reasons.map((x) => t("why_" + x) === "why_" + x ? x : t("why_" + x)).join("、")),
    el("td", {}, explaining(r.orders))))
      : [el("tr", {}, el("td", { colspan: "9", class: "muted" }, t("no_mismatch")))]));
  }

  async function refreshUsers() {
    const u = await api("GET", "/api/v1/ops/users");
    tbody("users").replaceChildren(...u.users.map((x) => el("tr", { "data-username": x.username },
      el("td", {}, x.username), el("td", {}, t(x.role)), el("td", {}, x.judge_id || "–"), el("td", {}, x.groups.join(", ") || "*"),
      el("td", {}, x.disabled ? t("disabled") : t("active")),
      el("td", {}, x.disabled || x.role !== "judge" ? null : el("button", {
        class: "secondary", onclick: async () => {
          try { await api("POST", `/api/v1/ops/users/${encodeURIComponent(x.username)}/disable`, {}); } catch (e) { alert(LB.errorText(e)); }
          refreshUsers();
        },
      }, t("disable"))))));
  }

  async function refreshAdjustments() {
    const a = await api("GET", "/api/v1/ops/adjustments" + (contestId ? "?contest=" + encodeURIComponent(contestId) : ""));
    tbody("adjustments").replaceChildren(...a.adjustments.map((x) => el("tr", {},
      el("td", {}, dateTime(x.produced_at)), el("td", {}, x.event.contestant_id), el("td", {}, t(x.event.data.kind)),
      el("td", { class: "num" }, x.event.data.value), el("td", {}, x.event.data.reason), el("td", {}, x.event.data.approver),
      el("td", {}, x.actor))));
  }

  async function refreshAudit() {
    const a = await api("GET", "/api/v1/ops/audit?limit=50");
    tbody("audit").replaceChildren(...a.entries.map((x) => el("tr", {},
      el("td", {}, dateTime(x.at_ms)), el("td", {}, `${x.actor} (${x.role ? t(x.role) : "-"})`),
      el("td", { title: x.action }, LB.t("a_" + x.action) === "a_" + x.action ? x.action : LB.t("a_" + x.action)),
      el("td", { title: x.outcome }, LB.t("o_" + x.outcome) === "o_" + x.outcome ? x.outcome : LB.t("o_" + x.outcome)),
      el("td", {}, x.target), el("td", {}, x.remote_addr))));
  }

  document.getElementById("issue-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const msg = document.getElementById("issue-msg");
    msg.className = "msg";
    msg.textContent = "";
    try {
      const res = await api("POST", "/api/v1/ops/judges", {
        contest_id: contestId, judge_id: f.judge_id.value.trim(), display_name: f.display_name.value.trim() || null,
        groups: [...f.groups.selectedOptions].map((o) => o.value),
      });
      document.getElementById("issued").replaceChildren(el("p", {}, `${t("username")}: `, el("b", { id: "issued-username" }, res.user.username)),
        el("p", {}, `${t("password_once")}: `, el("span", { class: "secret", id: "issued-password" }, res.password)));
      f.reset();
      refreshUsers();
    } catch (e) {
      msg.textContent = LB.errorText(e);
    }
  };

  document.getElementById("adj-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const msg = document.getElementById("adj-msg");
    msg.className = "msg";
    try {
      await api("POST", "/api/v1/ops/adjustments", {
        contest_id: contestId, round_id: f.round_id.value, contestant_id: f.contestant_id.value, kind: f.kind.value,
        value: f.value.value.trim(), component: f.component.value.trim() || null, reason: f.reason.value, approver: f.approver.value,
      });
      msg.className = "msg ok";
      msg.textContent = t("saved");
      f.value.value = "";
      f.reason.value = "";
      refreshAdjustments();
    } catch (e) {
      msg.textContent = LB.errorText(e);
    }
  };

  async function selectContest(id) {
    contestId = id;
    document.getElementById("imports-link").href = "/imports?contest=" + encodeURIComponent(id);
    const c = contest();
    document.getElementById("i-groups").replaceChildren(...(c ? c.groups : []).map((g) => el("option", { value: g.id }, g.name)));
    await Promise.all([refreshHealth(), refreshRounds(), refreshUsers(), refreshAdjustments(), refreshAudit(),
      refreshReconciliation().catch(() => {})]);
  }

  async function start(user) {
    document.getElementById("who").textContent = user.display_name || user.username;
    contests = (await api("GET", "/api/v1/contests")).contests;
    if (!contestId || !contest()) contestId = contests.length ? contests[0].id : null;
    const sel = document.getElementById("contest");
    sel.replaceChildren(...contests.map((c) => el("option", { value: c.id, selected: c.id === contestId }, c.name)));
    sel.onchange = () => selectContest(sel.value);
    await selectContest(contestId);
    setInterval(() => refreshHealth().catch(() => {}), 3000);
    setInterval(() => { refreshRounds().catch(() => {}); refreshAudit().catch(() => {}); }, 10000);
    setInterval(() => refreshReconciliation().catch(() => {}), 10000);
  }

  LB.ensureLogin("operator", start);
})();
