// The big screen: one EventSource on /api/v1/stream/leaderboard; every message is a full snapshot, so a
// reconnect (automatic, or ours after a hard failure) resynchronises by itself. Rows are keyed by
// contestant and moved with CSS transforms; a changed rank shows ▲/▼ for a while.
"use strict";

(() => {
  const { t, yuan, points, int, pct, time, duration, el, params } = LB;
  const contest = params.get("contest");
  const round = params.get("round");
  const group = params.get("group") || "";
  const topN = Math.max(1, Math.min(30, parseInt(params.get("n") || "10", 10) || 10));
  const token = params.get("token");

  const stage = document.getElementById("stage");
  const rowsBox = document.getElementById("rows");
  const conn = document.getElementById("conn");
  LB.translate();
  LB.langLink(document.getElementById("lang"));

  function fit() {
    const s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
    stage.style.transform = `scale(${s})`;
  }
  window.addEventListener("resize", fit);
  fit();

  let snapshot = null;
  let clockOffset = 0; // server time − local time, so stale ages and the countdown follow the server
  const rowEls = new Map(); // contestant_id -> element
  const lastRank = new Map(); // contestant_id -> rank in the previous snapshot
  const moves = new Map(); // contestant_id -> {delta, until}

  function setConn(up) {
    conn.className = "conn " + (up ? "up" : "down");
    conn.textContent = up ? t("live") : t("reconnecting");
    document.body.dataset.connected = up ? "1" : "0";
  }

  function rowHeight() {
    return Math.min(110, Math.floor(780 / topN));
  }

  function buildRow(r) {
    const e = el("div", { class: "row", "data-contestant": r.contestant_id },
      el("div", { class: "c-rank" }, el("span", { class: "rk" }), el("span", { class: "move" })),
      el("div", { class: "c-name" },
        el("div", { class: "n" }, el("span", { class: "nm" }), el("span", { class: "mark" }),
          el("span", { class: "stale-badge", hidden: true })),
        el("div", { class: "o" })),
      el("div", { class: "c-gmv num" }), el("div", { class: "c-orders num" }), el("div", { class: "c-viewers num" }),
      el("div", { class: "c-conv num" }), el("div", { class: "c-data num" }), el("div", { class: "c-total num" }));
    rowsBox.append(e);
    return e;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function render(snap) {
    const prev = snapshot;
    snapshot = snap;
    clockOffset = snap.server_now_ms - Date.now();
    setText(document.getElementById("contest-name"), snap.contest_name || snap.contest_id);
    setText(document.getElementById("round-name"), snap.round_name || snap.round_id);
    setText(document.getElementById("group-name"), snap.group_name || "");
    document.title = `${snap.contest_name} · ${snap.round_name}`;
    setText(document.getElementById("t-gmv"), "¥" + yuan(snap.totals.gmv_fen));
    setText(document.getElementById("t-orders"), int(snap.totals.paid_orders));
    setText(document.getElementById("t-viewers"), int(snap.totals.viewers));
    setText(document.getElementById("t-count"), int(snap.totals.contestants));
    setText(document.getElementById("updated"), `${t("updated")} ${time(snap.generated_at)} · v${snap.version}`);

    const h = rowHeight();
    const seen = new Set();
    const now = Date.now();
    snap.rows.forEach((r, i) => {
      seen.add(r.contestant_id);
      let e = rowEls.get(r.contestant_id);
      const isNew = !e;
      if (isNew) {
        e = buildRow(r);
        rowEls.set(r.contestant_id, e);
        // A newcomer slides in from below the list instead of appearing on top of another row.
        e.style.transition = "none";
        e.style.transform = `translateY(${780}px)`;
        e.getBoundingClientRect();
        e.style.transition = "";
      }
      const before = lastRank.get(r.contestant_id);
      if (before !== undefined && before !== r.rank) moves.set(r.contestant_id, { delta: before - r.rank, until: now + 8000 });
      lastRank.set(r.contestant_id, r.rank);
      e.style.height = h - 10 + "px";
      e.style.transform = `translateY(${i * h}px)`;
      e.dataset.rank = String(r.rank);
      e.dataset.index = String(i);
      e.classList.toggle("top1", r.rank === 1);
      e.classList.toggle("top2", r.rank === 2);
      e.classList.toggle("top3", r.rank === 3);
      // 取消资格: no place (listed last, marked); 待定: a tie waiting for the organiser's decision
      const excluded = r.status === "excluded";
      e.classList.toggle("is-excluded", excluded);
      e.classList.toggle("is-pending", !!r.pending);
      setText(e.querySelector(".rk"), excluded ? t("excluded") : String(r.rank));
      setText(e.querySelector(".mark"), excluded ? "" : r.pending ? t("pending") : "");
      setText(e.querySelector(".nm"), r.display_name || r.contestant_id);
      setText(e.querySelector(".o"), r.organisation || "");
      const oldTotal = e.dataset.total;
      setText(e.querySelector(".c-gmv"), yuan(r.gmv_fen));
      setText(e.querySelector(".c-orders"), int(r.paid_orders));
      setText(e.querySelector(".c-viewers"), int(r.viewers));
      setText(e.querySelector(".c-conv"), pct(r.conversion_ppm));
      // the data part rounded like the total (the contest's display_decimals), never 12 raw places
      const shown = String(r.total_display || "");
      const places = shown.includes(".") ? shown.length - shown.indexOf(".") - 1 : 2;
      setText(e.querySelector(".c-data"), points(r.data_score, places));
      setText(e.querySelector(".c-total"), r.total_display || r.total || "–");
      e.dataset.total = r.total;
      e.dataset.lastArrival = r.last_arrival_ms || "";
      if (prev && !isNew && oldTotal !== r.total) {
        e.classList.add("flash");
        setTimeout(() => e.classList.remove("flash"), 900);
      }
    });
    for (const [id, e] of rowEls) {
      if (!seen.has(id)) {
        e.remove();
        rowEls.delete(id);
      }
    }
    tick();
  }

  // Every second: clock, countdown, rank arrows and stale markers (staleness grows without any message).
  function tick() {
    const now = Date.now() + clockOffset;
    setText(document.getElementById("clock"), time(now));
    const cd = document.getElementById("countdown");
    const w = snapshot && snapshot.window;
    if (w) {
      if (now < w.start_ms) setText(cd, `${t("starts_in")} ${duration(w.start_ms - now)}`);
      else if (now < w.end_ms) setText(cd, `${t("ends_in")} ${duration(w.end_ms - now)}`);
      else setText(cd, t("ended"));
    }
    if (!snapshot) return;
    const staleMs = snapshot.stale_after_ms;
    for (const [id, e] of rowEls) {
      const arrival = parseInt(e.dataset.lastArrival || "0", 10);
      const stale = !arrival || now - arrival > staleMs;
      e.classList.toggle("is-stale", stale);
      const badge = e.querySelector(".stale-badge");
      badge.hidden = !stale;
      if (stale) setText(badge, arrival ? `${t("stale")} ${duration(now - arrival)}` : t("no_data"));
      const mv = moves.get(id);
      const m = e.querySelector(".move");
      if (mv && mv.until > Date.now()) {
        m.className = "move " + (mv.delta > 0 ? "up" : "down");
        setText(m, (mv.delta > 0 ? "▲" : "▼") + Math.abs(mv.delta));
      } else {
        m.className = "move";
        setText(m, "");
        moves.delete(id);
      }
    }
  }
  setInterval(tick, 1000);

  let es = null;
  let retryTimer = null;
  function connect() {
    const q = new URLSearchParams({ contest, round, limit: String(topN) });
    if (group) q.set("group", group);
    if (token) q.set("token", token);
    es = new EventSource("/api/v1/stream/leaderboard?" + q);
    es.addEventListener("snapshot", (ev) => {
      setConn(true);
      render(JSON.parse(ev.data));
    });
    es.onopen = () => {
      // Counted so a reconnect is visible to whoever watches the page (and to the tests).
      document.body.dataset.connects = String(parseInt(document.body.dataset.connects || "0", 10) + 1);
      setConn(true);
    };
    es.onerror = () => {
      setConn(false);
      // The browser retries a dropped stream by itself; after an HTTP error it gives up (CLOSED): retry here.
      if (es.readyState === EventSource.CLOSED && !retryTimer) {
        retryTimer = setTimeout(() => { retryTimer = null; connect(); }, 3000);
      }
    };
  }

  async function chooser() {
    document.getElementById("chooser").hidden = false;
    document.getElementById("colhead").hidden = true;
    const list = document.getElementById("choices");
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
            const gname = g ? " · " + (c.groups.find((x) => x.id === g) || { name: g }).name : "";
            list.append(el("li", {}, el("a", { href: "/screen?" + p }, `${c.name} · ${r.name}${gname}`)));
          }
        }
      }
    } catch (e) {
      list.append(el("li", { text: e.message }));
    }
  }

  // The conversion column is the figure this round's rules score, under their name (e.g. Harbin's
  // 下单转化率 = paid orders ÷ viewers): the label comes from the contest's definition.
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
      }
    } catch (e) {
      // the generic label stays
    }
  }

  setConn(false);
  if (contest && round) {
    connect();
    conversionLabel();
  } else chooser();
})();
