// The collective ranking screen (集体排名: 区县 / 市 / 团队): the round's collective rules, ranked from the
// members' totals (services/board/screen_data.py), from the same stream as the big screen (the round's
// snapshot for every group carries `collective`). Two rules side by side; more rules, or more
// organisations than fit, roll every `page_s` seconds.
"use strict";

(() => {
  const { el, params, time, duration } = LB;
  const t = SK.t;
  const contest = params.get("contest");
  const round = params.get("round");
  const token = params.get("token");
  const pageMs = Math.max(3, Math.min(600, parseInt(params.get("page_s") || "12", 10) || 12)) * 1000;
  const PER_PANEL = 8;
  const ROW_H = 80;

  const stage = document.getElementById("stage");
  const $ = (id) => document.getElementById(id);
  LB.translate();
  document.querySelectorAll("[data-st]").forEach((n) => { n.textContent = t(n.dataset.st); });
  LB.langLink($("lang"));
  SK.scaleStage(stage);
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };

  let snapshot = null;
  let connected = false;
  let page = 0; // over (rule, page of its rows) pairs, two per screen

  function aggLabel(rule) {
    const a = (t(rule.aggregate) || rule.aggregate).replace("{k}", rule.k || "");
    const lvl = (t("org_level") || {})[rule.level] || rule.level;
    return `${lvl} · ${a}（${t("collective_of")}）`;
  }

  // every (rule, slice of rows) that makes one panel
  function panels() {
    const out = [];
    for (const rule of (snapshot && snapshot.collective) || []) {
      const n = Math.max(1, Math.ceil(rule.rows.length / PER_PANEL));
      for (let i = 0; i < n; i++) out.push({ rule, rows: rule.rows.slice(i * PER_PANEL, (i + 1) * PER_PANEL), part: i, parts: n });
    }
    return out;
  }

  function draw() {
    const box = $("panels");
    const all = panels();
    const screens = Math.max(1, Math.ceil(all.length / 2));
    if (page >= screens) page = 0;
    setText($("pager"), screens > 1 ? `${LB.lang === "en" ? "Page" : "第"} ${page + 1}/${screens}${LB.lang === "en" ? "" : " 页"}` : "");
    const d = snapshot.display ? snapshot.display.decimals : 2;
    box.replaceChildren(...all.slice(page * 2, page * 2 + 2).map(({ rule, rows, part, parts }) => {
      const head = el("div", { class: "crow head" },
        el("div", { class: "k-rank", text: LB.t("rank") }),
        el("div", { class: "k-name", text: (t("org_level") || {})[rule.level] || rule.level }),
        el("div", { class: "k-members", text: LB.lang === "en" ? "Members" : "参赛人数" }),
        el("div", { class: "k-value", text: LB.t("total") }));
      const items = rows.map((r) => {
        const badges = [];
        if (r.award) badges.push(el("span", { class: "badge b-award", text: r.award }));
        if (r.tied) badges.push(el("span", { class: "badge b-tied", text: t("tied") }));
        if (r.pending) badges.push(el("span", { class: "badge b-pending", text: t("pending") }));
        if (r.status === "provisional") badges.push(el("span", { class: "badge b-prov", text: t("provisional") }));
        if (r.status === "ineligible") badges.push(el("span", { class: "badge b-prov", text: t("ineligible") }));
        const row = el("div", { class: "crow" + (r.award ? " gold" : "") + (r.status === "ineligible" ? " ineligible" : ""),
          "data-org": r.organisation_id, title: r.note || "" },
          el("div", { class: "k-rank", text: r.rank ? String(r.rank) : "–" }),
          el("div", { class: "k-name" }, el("span", { class: "nm", text: r.name }), ...badges),
          el("div", { class: "k-members", text: `${r.members}${LB.lang === "en" ? "" : t("members")}` }),
          el("div", { class: "k-value", text: LB.points(r.value, d) }));
        row.style.height = ROW_H - 8 + "px";
        return row;
      });
      const title = rule.name + (parts > 1 ? `（${part + 1}/${parts}）` : "");
      const panel = el("section", { class: "panel", "data-rule": rule.rule_id },
        el("h2", { text: title }), el("div", { class: "ph", text: aggLabel(rule) + (rule.computed ? "" : " " + t("not_live")) }),
        head, ...items);
      return panel;
    }));
    for (const n of box.querySelectorAll(".k-name .nm, .k-value, .k-members, h2, .ph")) SK.fit(n, parseFloat(getComputedStyle(n).fontSize), 14);
  }

  function render(snap) {
    snapshot = snap;
    SK.noteServerTime(snap.server_now_ms);
    SK.applyLook(snap.display, stage);
    setText($("contest-name"), snap.contest_name || snap.contest_id);
    SK.fitTitle($("contest-name"));
    setText($("sub-line"), [snap.round_name || snap.round_id, t("collective")].filter(Boolean).join(" · "));
    const kind = $("board-kind");
    kind.hidden = !snap.rows.length;
    kind.classList.toggle("final", !!snap.final);
    setText(kind, snap.final ? t("final_board") : t("provisional_board"));
    setText($("t-gmv"), "¥" + SK.money(snap.totals.gmv_fen));
    SK.fit($("t-gmv"), 44, 22);
    setText($("updated"), snap.computed_at ? `${t("updated")} ${time(SK.onContestClock(snap.clock, snap.computed_at))}` : "");
    document.title = [snap.contest_name, t("collective")].filter(Boolean).join(" · ");
    draw();
    tick();
  }

  function tick() {
    const conn = $("conn");
    let st;
    if (snapshot) {
      const now = SK.contestNow(snapshot.clock);
      setText($("clock"), time(now));
      const w = snapshot.window;
      let ended = false;
      if (w) {
        if (now < w.start_ms) setText($("countdown"), `${t("starts_in")} ${duration(w.start_ms - now)}`);
        else if (now < w.end_ms) setText($("countdown"), `${t("ends_in")} ${duration(w.end_ms - now)}`);
        else { setText($("countdown"), t("ended")); ended = true; }
      }
      const newest = Math.max(0, ...snapshot.rows.map((r) => r.last_arrival_ms || 0));
      st = SK.dataState(connected, snapshot, newest, ended);
    } else st = SK.dataState(connected, null, 0, false);
    conn.className = "conn " + st.kind;
    setText(conn, st.text);
    document.body.dataset.data = st.kind;
  }

  setInterval(tick, 1000);
  setInterval(() => {
    if (!snapshot) return;
    const screens = Math.ceil(panels().length / 2);
    if (screens > 1) { page = (page + 1) % screens; document.body.dataset.page = String(page); draw(); }
  }, pageMs);

  const q = new URLSearchParams({ contest: contest || "", round: round || "", limit: "1000" });
  if (token) q.set("token", token);
  const back = new URLSearchParams(location.search);
  $("other").href = "/screen?" + back;
  $("other").textContent = t("leaderboard_link");
  if (contest && round) SK.stream(q, render, (up) => { connected = up; tick(); });
  else location.replace("/screen" + location.search);
})();
