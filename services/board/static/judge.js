// The judges' console: the judge's contestants, live charts of the selected one (ECharts, served
// locally), and score entry. Charts refresh when the round's leaderboard stream says something changed
// (and every 10 s regardless); the server enforces every rule the form hints at.
"use strict";

(() => {
  const { t, yuan, int, pct, time, dateTime, el, api } = LB;
  LB.translate();
  LB.langLink(document.getElementById("lang"));
  document.getElementById("logout").onclick = LB.logout;

  let info = null; // /judge/contestants
  let selected = null;
  let roundId = LB.params.get("round") || null;
  let stream = null;
  const charts = {};

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
    return charts[id];
  }
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

  async function loadContestants() {
    const q = roundId ? "?round=" + encodeURIComponent(roundId) : "";
    info = await api("GET", "/api/v1/judge/contestants" + q);
    roundId = info.round_id;
    document.getElementById("contest-name").textContent = info.contest.name;
    const sel = document.getElementById("round");
    sel.replaceChildren(...info.rounds.map((r) => el("option", { value: r.id, selected: r.id === roundId }, r.name)));
    sel.onchange = () => { roundId = sel.value; selected = null; start(); };
    const ul = document.getElementById("contestants");
    ul.replaceChildren(
      ...info.contestants.map((p) =>
        el("li", {
          class: p.contestant_id === selected ? "sel" : "",
          "data-contestant": p.contestant_id,
          onclick: () => select(p.contestant_id),
        },
        el("span", {}, p.display_name, " ", el("span", { class: "muted" }, p.group_name)),
        el("span", {},
          p.contestant_id === info.on_stage ? el("span", { class: "badge info" }, t("on_stage")) : null,
          p.state === "closed" ? el("span", { class: "badge warn" }, t("closed")) : null)))
    );
    if (!selected && info.contestants.length) {
      select(info.on_stage && info.contestants.some((p) => p.contestant_id === info.on_stage)
        ? info.on_stage : info.contestants[0].contestant_id);
    }
  }

  function select(id) {
    selected = id;
    document.querySelectorAll("#contestants li").forEach((li) => li.classList.toggle("sel", li.dataset.contestant === id));
    const p = info.contestants.find((x) => x.contestant_id === id);
    document.getElementById("sel-name").textContent = p ? `${p.display_name} · ${p.group_name}` : id;
    refreshSeries();
    refreshScores();
    // anomaly alerts of this contestant, with their evidence (anomalies.js; advisory, never scored)
    document.getElementById("anomalies-title").textContent = LB.anomalyTitle();
    LB.showAnomalies(document.getElementById("judge-anomalies"), "contestant=" + encodeURIComponent(id), false,
      () => selected === id).catch(() => {});
  }

  const axisTime = { type: "time", axisLabel: { formatter: (v) => time(v).slice(0, 5) } };

  async function refreshSeries() {
    if (!selected) return;
    const id = selected;
    const data = await api("GET", `/api/v1/judge/series?round=${encodeURIComponent(roundId)}&contestant=${encodeURIComponent(id)}`);
    if (id !== selected) return;
    const pts = data.points;
    const last = data.latest;
    if (LB.onJudgeSelect) { LB.onJudgeSelect(roundId, id, data); LB.onJudgeSelect(roundId, id, null); }
    document.getElementById("k-gmv").textContent = last ? "¥" + yuan(last.gmv_fen) : "–";
    document.getElementById("k-online").textContent = last ? int(last.online_now) : "–";
    document.getElementById("k-orders").textContent = last ? int(last.orders_paid) : "–";
    document.getElementById("k-uv").textContent = last && last.uv_value_fen !== null ? yuan(last.uv_value_fen) : "–";
    document.getElementById("k-gpm").textContent = last && last.gpm_fen !== null ? yuan(last.gpm_fen) : "–";
    document.getElementById("k-refund").textContent = last ? pct(last.refund_rate_ppm) : "–";
    const tooltip = { trigger: "axis" };
    chart("chart-gmv").setOption({
      animation: false, tooltip, legend: { top: 0, data: [t("gmv_short"), t("net_gmv")] }, grid: { left: 70, right: 16, top: 36, bottom: 28 },
      xAxis: axisTime, yAxis: { type: "value", axisLabel: { formatter: (v) => (v / 100).toLocaleString() } },
      series: [
        { name: t("gmv_short"), type: "line", showSymbol: false, data: pts.map((p) => [p.ts_ms, p.gmv_fen]) },
        { name: t("net_gmv"), type: "line", showSymbol: false, data: pts.map((p) => [p.ts_ms, p.net_gmv_fen]) },
      ],
    }, true);
    chart("chart-online").setOption({
      animation: false, tooltip, grid: { left: 60, right: 16, top: 20, bottom: 28 }, xAxis: axisTime, yAxis: { type: "value" },
      series: [{ name: t("online"), type: "line", areaStyle: {}, showSymbol: false, data: pts.map((p) => [p.ts_ms, p.online_now]) }],
    }, true);
    LB.funnelChart = () => chart("chart-funnel");
    // judge-figures.js draws the funnel over the reported steps with their shares; the first paint (before its
    // answer) leaves out leading steps without figures (never 曝光 0 above 点击)
    const firstReported = data.funnel.findIndex((s) => s.value);
    const funnelSteps = firstReported < 0 ? [] : data.funnel.slice(firstReported); // no 曝光 0 above 点击
    if (!LB.onJudgeSelect || !chart("chart-funnel").getOption()) chart("chart-funnel").setOption({
      animation: false, tooltip: { trigger: "item" },
      series: [{
        type: "funnel", sort: "none", left: "10%", width: "80%", top: 10, bottom: 10, gap: 2,
        label: { formatter: (p) => `${p.name} ${int(p.value)}` },
        data: funnelSteps.map((s) => ({ name: t(s.step), value: s.value })),
      }],
    }, true);
    chart("chart-ratios").setOption({
      animation: false, tooltip, legend: { top: 0, data: [t("uv_value"), t("gpm"), t("refund_rate")] },
      grid: { left: 60, right: 60, top: 36, bottom: 28 }, xAxis: axisTime,
      yAxis: [{ type: "value", axisLabel: { formatter: (v) => (v / 100).toFixed(0) } },
        { type: "value", axisLabel: { formatter: (v) => (v / 10000).toFixed(1) + "%" } }],
      series: [
        { name: t("uv_value"), type: "line", showSymbol: false, data: pts.map((p) => [p.ts_ms, p.uv_value_fen]) },
        { name: t("gpm"), type: "line", showSymbol: false, data: pts.map((p) => [p.ts_ms, p.gpm_fen]) },
        { name: t("refund_rate"), type: "line", yAxisIndex: 1, showSymbol: false, data: pts.map((p) => [p.ts_ms, p.refund_rate_ppm]) },
      ],
    }, true);
    document.body.dataset.seriesPoints = String(pts.length);
  }

  async function refreshScores() {
    if (!selected) return;
    const id = selected;
    const s = await api("GET", `/api/v1/judge/scores?round=${encodeURIComponent(roundId)}&contestant=${encodeURIComponent(id)}`);
    if (id !== selected) return;
    const st = document.getElementById("sel-state");
    st.replaceChildren(
      el("span", { class: "badge " + (s.item_state === "closed" ? "warn" : "ok"), id: "item-state" }, t(s.item_state === "closed" ? "closed" : "open")),
      ...(s.frozen ? [" ", el("span", { class: "badge bad" }, t("frozen"))] : []));
    const form = document.getElementById("score-form");
    const locked = s.item_state === "closed" || s.frozen;
    const formKey = `${roundId}/${id}/${s.criteria.map((c) => c.id).join(",")}`;
    if (form.dataset.key !== formKey) {
      // Built once per contestant: the periodic refresh must not wipe what the judge is typing.
      form.dataset.key = formKey;
      form.replaceChildren(
        ...s.criteria.map((c) => el("div", { class: "form-row" },
          el("label", { for: "crit-" + c.id }, `${c.name}（${t("max")} ${c.max_points}）`),
          el("input", {
            type: "number", id: "crit-" + c.id, name: c.id, min: "0", max: c.max_points, step: "0.5",
            value: s.mine[c.id] ? s.mine[c.id].points : "",
          }),
          el("span", { class: "muted mine", "data-criterion": c.id }))),
        el("button", { class: "primary", type: "submit", id: "submit-scores" }, t("submit")));
    }
    form.querySelectorAll("input, button").forEach((n) => { n.disabled = locked; });
    form.querySelectorAll(".mine").forEach((n) => {
      const m = s.mine[n.dataset.criterion];
      n.textContent = m ? `${t("submitted")} ${m.points}` : "";
    });
    form.onsubmit = submit;
    const hist = document.querySelector("#history tbody");
    hist.replaceChildren(...s.history.slice().reverse().map((h) => el("tr", {},
      el("td", {}, dateTime(h.observed_at)), el("td", { title: h.criterion }, h.criterion_name || h.criterion), el("td", { class: "num" }, h.points))));
    const others = document.getElementById("others");
    if (!s.others_visible) {
      others.replaceChildren(el("p", { class: "muted" }, t("hidden_until_close")));
    } else {
      others.replaceChildren(el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, t("judge")), el("th", {}, t("criterion")), el("th", { class: "num" }, t("value")))),
        el("tbody", {}, ...s.others.map((o) => el("tr", {}, el("td", {}, o.judge_id), el("td", { title: o.criterion }, o.criterion_name || o.criterion), el("td", { class: "num" }, o.points))))));
    }
  }

  async function submit(ev) {
    ev.preventDefault();
    const msg = document.getElementById("score-msg");
    msg.className = "msg";
    msg.textContent = "";
    const scores = {};
    for (const input of ev.target.querySelectorAll("input[type=number]")) {
      if (input.value !== "") scores[input.name] = input.value;
    }
    try {
      const res = await api("POST", "/api/v1/judge/scores", { round_id: roundId, contestant_id: selected, scores });
      msg.className = "msg ok";
      msg.textContent = `${t("submitted")} (${res.events.length})`;
      await refreshScores();
    } catch (e) {
      msg.textContent = LB.errorText(e);
    }
  }

  function listen() {
    if (stream) stream.close();
    const q = new URLSearchParams({ contest: info.contest.id, round: roundId, limit: "1" });
    stream = new EventSource("/api/v1/stream/leaderboard?" + q);
    stream.addEventListener("snapshot", () => refreshSeries().catch(() => {}));
  }

  async function start() {
    await loadContestants();
    listen();
  }

  setInterval(() => {
    if (!info) return;
    loadContestants().catch(() => {});
    refreshSeries().catch(() => {});
    refreshScores().catch(() => {});
  }, 10000);

  LB.ensureLogin("judge", (user) => {
    document.getElementById("who").textContent = `${t("judge")} ${user.judge_id} · ${user.display_name}`;
    return start();
  });
})();
