// The big screen (大屏): one EventSource on /api/v1/stream/leaderboard; every message is a full snapshot, so
// a reconnect resynchronises by itself. The whole field is shown in pages of `n` rows that roll every
// `page_s` seconds. The order is applied at most every `reorder_s` seconds (figures update at once), and a
// row changing place fades out, moves, and fades in: no two rows are ever on top of each other.
"use strict";

(() => {
  const { el, params, time, duration, points, pct } = LB;
  const t = SK.t;
  const contest = params.get("contest");
  const round = params.get("round");
  const group = params.get("group") || "";
  const token = params.get("token");
  const clampInt = (v, lo, hi, d) => Math.max(lo, Math.min(hi, parseInt(v || String(d), 10) || d));
  const perPage = clampInt(params.get("n"), 1, 20, 10);
  const pageMs = clampInt(params.get("page_s"), 3, 600, 12) * 1000;
  const reorderMs = clampInt(params.get("reorder_s"), 0, 120, 6) * 1000;
  const roll = params.get("roll") !== "0"; // roll=0: the top n only, no pages
  const FADE_MS = 320;

  const stage = document.getElementById("stage");
  const rowsBox = document.getElementById("rows");
  const conn = document.getElementById("conn");
  LB.translate();
  document.querySelectorAll("[data-st]").forEach((n) => { n.textContent = t(n.dataset.st); });
  LB.langLink(document.getElementById("lang"));
  SK.scaleStage(stage);
  const $ = (id) => document.getElementById(id);

  let snapshot = null;
  let connected = false;
  const rowEls = new Map(); // contestant_id -> element
  const byId = new Map(); // contestant_id -> row of the newest snapshot
  let order = []; // the order shown (applied at most every reorderMs)
  let lastReorder = 0;
  let reorderTimer = null;
  let page = 0;
  const shownRank = new Map(); // contestant_id -> rank shown before the last re-order
  const moves = new Map(); // contestant_id -> {delta, until}
  const gmvHistory = []; // [server ms, field GMV fen]

  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  const decimals = () => (snapshot && snapshot.display ? snapshot.display.decimals : 2);
  const rowHeight = () => Math.floor(728 / perPage);

  function fitCell(node, minPx = 14) {
    if (!node.dataset.max) node.dataset.max = String(parseFloat(getComputedStyle(node).fontSize));
    const max = parseFloat(node.dataset.max);
    if (node.scrollWidth > node.clientWidth + 0.5 || parseFloat(node.style.fontSize || max) < max) SK.fit(node, max, minPx);
  }

  function buildRow(r) {
    const e = el("div", { class: "row out", "data-contestant": r.contestant_id },
      el("div", { class: "c-rank" }, el("span", { class: "rk" }), el("span", { class: "move" })),
      el("div", { class: "c-name" },
        el("div", { class: "n" }, el("span", { class: "nm" }), el("span", { class: "pfs" })),
        el("div", { class: "o" }, el("span", { class: "org" }),
          el("span", { class: "badge b-live" }), el("span", { class: "badge b-sched" }), el("span", { class: "badge b-award" }),
          el("span", { class: "badge b-tied" }), el("span", { class: "badge b-pending" }),
          el("span", { class: "badge b-prov" }), el("span", { class: "badge b-final" }),
          el("span", { class: "badge b-stale" }))),
      el("div", { class: "c-gmv num" }), el("div", { class: "c-orders num" }), el("div", { class: "c-viewers num" }),
      el("div", { class: "c-conv num" }), el("div", { class: "c-judge num" }), el("div", { class: "c-data num" }),
      el("div", { class: "c-total num" }));
    e.style.visibility = "hidden";
    rowsBox.append(e);
    return e;
  }

  function fillRow(e, r, prev) {
    const q = (s) => e.querySelector(s);
    const excluded = r.status === "excluded";
    e.classList.toggle("is-excluded", excluded);
    e.dataset.status = r.status || "ranked";
    setText(q(".nm"), r.display_name || r.contestant_id);
    const pfs = q(".pfs");
    const pfKey = (r.platforms || []).join(",");
    if (pfs.dataset.k !== pfKey) {
      pfs.dataset.k = pfKey;
      pfs.replaceChildren(...(r.platforms || []).map(SK.platformBadge));
      pfs.style.display = "contents";
    }
    setText(q(".org"), r.organisation || "");
    setText(q(".b-award"), excluded ? "" : r.award || "");
    setText(q(".b-tied"), !excluded && r.tied ? t("tied") : "");
    setText(q(".b-pending"), !excluded && r.pending ? t("pending") : "");
    setText(q(".b-prov"), !excluded && r.status === "provisional" && !r.pending ? t("provisional") : "");
    setText(q(".b-final"), r.final_figures ? t("final_figures") : "");
    e.title = (r.notes || []).join("\n");
    const d = decimals();
    setText(q(".c-gmv"), SK.money(r.gmv_fen));
    setText(q(".c-orders"), SK.count(r.paid_orders));
    setText(q(".c-viewers"), SK.count(r.viewers));
    setText(q(".c-conv"), pct(r.conversion_ppm));
    setText(q(".c-judge"), points(r.judge_score, d));
    setText(q(".c-data"), points(r.data_score, d));
    setText(q(".c-total"), excluded ? "–" : r.total_display || points(r.total, d));
    if (prev && prev.total !== r.total) {
      e.classList.add("flash");
      setTimeout(() => e.classList.remove("flash"), 900);
    }
    for (const s of [".c-gmv", ".c-orders", ".c-viewers", ".c-conv", ".c-judge", ".c-data", ".c-total"]) fitCell(q(s));
    fitCell(q(".nm"), 20);
    fitCell(q(".o"), 12);
  }

  // Place every row of the shown order on the current page; rows that change slot fade out, move, fade in.
  // One move cycle at a time: a layout asked for during a cycle runs when it ends, against where the rows
  // are then (a stale cycle never puts a row back on a slot another row has taken).
  let cycling = false;
  let layoutAgain = false;
  let appliedSnap = null; // the snapshot whose order is `order`: its figures and places show with it
  function layout() {
    if (cycling) { layoutAgain = true; return; }
    const snap = appliedSnap;
    if (!snap) return;
    const h = rowHeight();
    rowsBox.style.setProperty("--rh", h - 10 + "px");
    const pages = Math.max(1, Math.ceil(order.length / perPage));
    if (page >= pages) page = 0;
    setText($("pager"), pages > 1 ? `${LB.lang === "en" ? "Page" : "第"} ${page + 1}/${pages} ${LB.lang === "en" ? "" : "页"}`.trim() : "");
    addRows(snap);
    const moving = [];
    const inOrder = new Set(order);
    order.forEach((id, i) => {
      const e = rowEls.get(id);
      if (!e) return;
      const visible = Math.floor(i / perPage) === page;
      const y = (i % perPage) * h;
      e.style.height = h - 10 + "px";
      const wasVisible = e.dataset.visible === "1";
      const sameSlot = wasVisible && visible && e.dataset.y === String(y);
      if (sameSlot) return;
      if (!wasVisible && !visible) { e.dataset.index = String(i); return; }
      moving.push({ e, i, visible, y, wasVisible });
    });
    for (const [id, e] of rowEls) if (!inOrder.has(id) && e.dataset.visible === "1") moving.push({ e, i: -1, visible: false, y: 0, wasVisible: true });
    if (!moving.length) { commit(snap); return; }
    cycling = true;
    document.body.dataset.gliding = "1";
    // phase 1: the rows leaving a slot fade out together, as they were; phase 2: the snapshot's figures and
    // places are shown, the rows move, and the moved and shown rows fade in together
    for (const m of moving) if (m.wasVisible) m.e.classList.add("out");
    const anyOut = moving.some((m) => m.wasVisible);
    setTimeout(() => {
      commit(snap);
      for (const m of moving) {
        m.e.style.transform = `translateY(${m.y}px)`;
        m.e.dataset.y = String(m.y);
        if (m.i >= 0) m.e.dataset.index = String(m.i);
        m.e.dataset.visible = m.visible ? "1" : "0";
        m.e.style.visibility = m.visible ? "visible" : "hidden";
      }
      // (timers, not requestAnimationFrame: a screen in a background tab or an occluded window gets no
      // animation frames, and its rows must not stay faded out)
      for (const m of moving) if (m.visible) m.e.getBoundingClientRect(); // the move lands before the fade-in
      setTimeout(() => {
        for (const m of moving) if (m.visible) m.e.classList.remove("out");
        setTimeout(() => {
          cycling = false;
          document.body.dataset.gliding = "0";
          dropGone();
          if (layoutAgain) { layoutAgain = false; layout(); }
        }, FADE_MS);
      }, 20);
    }, anyOut ? FADE_MS : 0);
  }

  // Rows for newcomers (hidden until placed; filled at once, nobody sees them yet).
  function addRows(snap) {
    for (const r of snap.rows) {
      if (rowEls.has(r.contestant_id)) continue;
      const e = buildRow(r);
      rowEls.set(r.contestant_id, e);
      byId.set(r.contestant_id, r);
      fillRow(e, r, null);
      e.dataset.lastArrival = r.last_arrival_ms || "";
    }
  }

  // Rows that left the leaderboard go once they are out of sight.
  function dropGone() {
    const inOrder = new Set(order);
    for (const [id, e] of rowEls) {
      if (!inOrder.has(id) && e.dataset.visible !== "1") {
        e.remove();
        rowEls.delete(id);
        byId.delete(id);
      }
    }
  }

  // A snapshot's figures, places, arrows and podium colours, shown together (when its order lands).
  function commit(snap) {
    const now = Date.now();
    for (const r of snap.rows) {
      const id = r.contestant_id;
      const e = rowEls.get(id);
      if (!e) continue;
      const prev = byId.get(id);
      byId.set(id, r);
      fillRow(e, r, prev);
      e.dataset.lastArrival = r.last_arrival_ms || "";
      const before = shownRank.get(id);
      if (before !== undefined && before !== r.rank && r.rank && before) moves.set(id, { delta: before - r.rank, until: now + 8000 });
      shownRank.set(id, r.rank);
      e.dataset.rank = String(r.rank);
      const excluded = r.status === "excluded";
      setText(e.querySelector(".rk"), excluded ? t("excluded") : String(r.rank));
      e.classList.toggle("top1", r.rank === 1 && !excluded);
      e.classList.toggle("top2", r.rank === 2 && !excluded);
      e.classList.toggle("top3", r.rank === 3 && !excluded);
    }
    if (!cycling) dropGone();
    tick();
  }

  function applyOrder() {
    reorderTimer = null;
    if (!snapshot) return;
    const next = snapshot.rows.map((r) => r.contestant_id);
    const changed = order.length > 0 && next.join("\n") !== order.join("\n"); // the first layout is no re-order
    order = next;
    appliedSnap = snapshot;
    if (changed) {
      lastReorder = Date.now();
      document.body.dataset.reorders = String(parseInt(document.body.dataset.reorders || "0", 10) + 1);
    }
    layout();
  }

  function scheduleOrder() {
    const next = snapshot.rows.map((r) => r.contestant_id).join("\n");
    if (next === order.join("\n")) { applyOrder(); return; } // ranks may change without the order
    if (reorderTimer) return; // the newest snapshot's order is applied when the timer fires
    const wait = Math.max(0, lastReorder + reorderMs - Date.now());
    if (!order.length || wait === 0) applyOrder();
    else reorderTimer = setTimeout(applyOrder, wait);
  }

  function render(snap) {
    snapshot = snap;
    SK.noteServerTime(snap.server_now_ms);
    SK.applyLook(snap.display, stage);
    const titleEl = $("contest-name");
    setText(titleEl, snap.contest_name || snap.contest_id);
    SK.fitTitle(titleEl);
    titleEl.title = snap.contest_name || "";
    const sub = $("sub-line");
    setText(sub, [snap.round_name || snap.round_id, snap.group_name].filter(Boolean).join(" · "));
    SK.fit(sub, 32, 18);
    const kind = $("board-kind");
    kind.hidden = !snap.rows.length;
    kind.classList.toggle("final", !!snap.final);
    setText(kind, snap.final ? t("final_board") : t(document.body.dataset.ended === "1" ? "provisional_ended" : "provisional_board"));
    document.title = [snap.contest_name, snap.round_name].filter(Boolean).join(" · ");
    const gmv = snap.totals.gmv_fen;
    setText($("t-gmv"), "¥" + SK.money(gmv));
    SK.fit($("t-gmv"), 40, 20);
    setText($("t-orders"), SK.count(snap.totals.paid_orders));
    setText($("t-viewers"), SK.count(snap.totals.viewers));
    setText($("t-count"), LB.int(snap.totals.contestants));
    for (const id of ["t-orders", "t-viewers", "t-count"]) SK.fit($(id), 36, 18);
    noteGmv(gmv);
    setText($("updated"), snap.computed_at ? `${t("updated")} ${time(SK.onContestClock(snap.clock, snap.computed_at))}` : "");
    $("other").hidden = !(snap.collective && snap.collective.length);
    const anyFinal = snap.rows.some((r) => r.final_figures);
    setText($("note"), anyFinal ? "※ " + t("final_figures_note") : "");

    scheduleOrder();
    tick();
  }

  // The headline GMV's trend since the screen opened, and what the last 5 minutes added.
  function noteGmv(fen) {
    const now = SK.serverNow();
    const last = gmvHistory[gmvHistory.length - 1];
    if (!last || last[1] !== fen || now - last[0] > 15000) gmvHistory.push([now, fen]);
    while (gmvHistory.length > 2 && now - gmvHistory[0][0] > 30 * 60_000) gmvHistory.shift();
    drawTrend();
  }
  function drawTrend() {
    const line = document.querySelector("#trend polyline");
    if (gmvHistory.length < 2) { line.setAttribute("points", ""); setText($("trend-delta"), ""); return; }
    const t0 = gmvHistory[0][0], t1 = Math.max(t0 + 1, SK.serverNow());
    const vals = gmvHistory.map((p) => p[1]);
    const lo = Math.min(...vals), hi = Math.max(...vals, lo + 1);
    const pts = gmvHistory.map(([ts, v]) => `${((ts - t0) / (t1 - t0) * 220).toFixed(1)},${(42 - (v - lo) / (hi - lo) * 40).toFixed(1)}`);
    pts.push(`220,${(42 - (vals[vals.length - 1] - lo) / (hi - lo) * 40).toFixed(1)}`);
    line.setAttribute("points", pts.join(" "));
    const cut = SK.serverNow() - 5 * 60_000;
    let base = gmvHistory[0];
    for (const p of gmvHistory) if (p[0] <= cut) base = p;
    const delta = vals[vals.length - 1] - base[1];
    setText($("trend-delta"), delta > 0 ? "+" + SK.money(delta) : "");
    $("trend-delta").title = t("trend5");
  }

  function roundEnd(snap) {
    const w = snap.window;
    if (!w) return null;
    const slots = snap.rows.map((r) => r.slot).filter(Boolean);
    // With live slots for everyone the live part ends with the last slot, not the (whole-day) window.
    if (slots.length && slots.length === snap.rows.length) return Math.min(w.end_ms, Math.max(...slots.map((s) => s.end_ms)));
    return w.end_ms;
  }

  // Every second: the contest's clock, the countdowns, who is live, rank arrows, stale markers, data state.
  function tick() {
    if (!snapshot) { setConn(); return; }
    const now = SK.contestNow(snapshot.clock);
    const wall = SK.serverNow();
    setText($("clock"), time(now));
    const w = snapshot.window;
    const end = roundEnd(snapshot);
    const cd = $("countdown");
    let ended = false;
    if (w) {
      if (now < w.start_ms) setText(cd, `${t("starts_in")} ${duration(w.start_ms - now)}`);
      else if (now < end) setText(cd, `${end < w.end_ms ? t("round_ends_in") : t("ends_in")} ${duration(end - now)}`);
      else { setText(cd, t("ended")); ended = true; }
    }
    document.body.dataset.ended = ended ? "1" : "0";
    // after the round and before the freeze the results are still provisional, no longer live
    if (!snapshot.final) setText($("board-kind"), t(ended ? "provisional_ended" : "provisional_board"));
    // who is live now, else who is next
    let live = null, next = null;
    for (const r of snapshot.rows) {
      const s = r.slot;
      if (!s) continue;
      if (s.start_ms <= now && now < s.end_ms && (!live || s.start_ms < live.slot.start_ms)) live = r;
      if (s.start_ms > now && (!next || s.start_ms < next.slot.start_ms)) next = r;
    }
    const strip = $("live-strip");
    const who = (r) => [r.display_name, r.organisation].filter(Boolean).join("（") + (r.organisation ? "）" : "");
    if (live) {
      strip.hidden = false;
      setText($("live-label"), t("now_live"));
      setText($("live-who"), who(live));
      setText($("live-left"), `${t("slot_left")} ${duration(live.slot.end_ms - now)}`);
    } else if (next && !ended) {
      strip.hidden = false;
      setText($("live-label"), t("next_live"));
      setText($("live-who"), who(next));
      setText($("live-left"), `${duration(next.slot.start_ms - now)} ${t("starts_in_short")}`);
    } else strip.hidden = true;
    if (!strip.hidden) SK.fit($("live-who"), 28, 16);

    let newest = 0;
    const staleMs = snapshot.stale_after_ms;
    for (const [id, e] of rowEls) {
      const r = byId.get(id);
      const arrival = parseInt(e.dataset.lastArrival || "0", 10);
      newest = Math.max(newest, arrival);
      // a feed is expected while the contestant's slot (else the round) runs: finished is not stale
      const s = r && r.slot;
      const expected = r && r.status !== "excluded" && (s ? s.start_ms <= now && now < s.end_ms : w && w.start_ms <= now && now < end);
      const stale = !!expected && (!arrival || wall - arrival > staleMs);
      e.classList.toggle("is-stale", stale);
      setText(e.querySelector(".b-stale"), stale ? (arrival ? `${t("stale")} ${duration(wall - arrival)}` : t("no_data")) : "");
      setText(e.querySelector(".b-live"), r && s && s.start_ms <= now && now < s.end_ms ? t("on_stage") : "");
      // her slot before and after: when she goes live, or that she has finished (not stale)
      setText(e.querySelector(".b-sched"), !s ? "" : now < s.start_ms ? `${time(s.start_ms).slice(0, 5)} ${t("goes_live")}` : now >= s.end_ms ? t("slot_done") : "");
      const mv = moves.get(id);
      const m = e.querySelector(".move");
      if (mv && mv.until > Date.now()) {
        m.className = "move " + (mv.delta > 0 ? "up" : "down");
        setText(m, (mv.delta > 0 ? "▲" : "▼") + Math.abs(mv.delta));
      } else if (m.textContent) {
        m.className = "move";
        setText(m, "");
        moves.delete(id);
      }
      if (stale || e.querySelector(".b-live").textContent || e.querySelector(".b-sched").textContent) fitCell(e.querySelector(".o"), 12);
    }
    setConn(newest, ended);
  }

  function setConn(newest = 0, ended = false) {
    const st = SK.dataState(connected, snapshot, newest, ended);
    conn.className = "conn " + st.kind;
    setText(conn, st.text);
    document.body.dataset.connected = connected ? "1" : "0";
    document.body.dataset.data = st.kind;
  }

  setInterval(tick, 1000);
  setInterval(() => {
    if (roll && order.length > perPage && document.body.dataset.gliding !== "1") {
      page = (page + 1) % Math.ceil(order.length / perPage);
      document.body.dataset.page = String(page);
      layout();
    }
  }, pageMs);

  async function chooser() {
    document.body.classList.add("choosing");
    $("chooser").hidden = false;
    $("colhead").hidden = true;
    conn.hidden = true;
    setText($("contest-name"), "Liveboard");
    setText($("sub-line"), t("big_screen"));
    const list = $("choices");
    try {
      const q = token ? "?token=" + encodeURIComponent(token) : "";
      const data = await LB.api("GET", "/api/v1/contests" + q);
      for (const c of data.contests) {
        for (const r of c.rounds) {
          const groups = r.groups.length > 1 ? ["", ...r.groups] : [""];
          for (const g of groups) {
            const p = new URLSearchParams({ contest: c.id, round: r.id });
            if (g) p.set("group", g);
            if (LB.lang === "en") p.set("lang", "en");
            if (token) p.set("token", token);
            const gname = g ? (c.groups.find((x) => x.id === g) || { name: g }).name : "";
            const label = [c.name, r.name, gname].filter(Boolean).join(" · ");
            const li = el("li", {}, el("a", { href: "/screen?" + p }, label));
            if (!g) {
              p.delete("group");
              li.append(el("a", { class: "alt", href: "/screen/collective?" + p }, t("collective_link")));
            }
            list.append(li);
          }
        }
      }
    } catch (e) {
      list.append(el("li", { text: e.message }));
    }
  }

  // The conversion column is the figure this round's rules score, under their name (Harbin's 下单转化率 =
  // paid orders ÷ viewers), from the contest's definition: the same figure as the score's.
  async function conversionLabel() {
    try {
      const q = token ? "?token=" + encodeURIComponent(token) : "";
      const data = await LB.api("GET", "/api/v1/contests" + q);
      const c = data.contests.find((x) => x.id === contest);
      const r = c && c.rounds.find((x) => x.id === round);
      if (!r || !r.conversion) return;
      const head = document.querySelector('#colhead [data-t="conversion"]');
      if (head) {
        if (LB.lang !== "en") head.textContent = r.conversion.name;
        head.title = LB.lang === "en" ? r.conversion.label_en : r.conversion.label_zh;
        SK.fit(head, 24, 14);
      }
    } catch (e) {
      // the generic label stays
    }
  }

  if (contest && round) {
    const q = new URLSearchParams({ contest, round, limit: roll ? "1000" : String(perPage) });
    if (group) q.set("group", group);
    if (token) q.set("token", token);
    SK.stream(q, render, (up) => { connected = up; tick(); });
    conversionLabel();
    const other = $("other");
    const p = new URLSearchParams(location.search);
    p.delete("group");
    other.href = "/screen/collective?" + p;
    other.textContent = t("collective_link");
  } else chooser();
  setConn();
})();
