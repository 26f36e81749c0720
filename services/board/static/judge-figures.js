// The judges' console beside each KPI (issue 12): the figure as the round's rules score it, the field's
// median and the contestant's rank (GET /api/v1/judge/figures); interactions where the platform reports them;
// per-minute sales bars (from the series judge.js loads); the funnel over the reported steps only, with each
// step's share of the one before. Follows the selection of judge.js (LB.onJudgeSelect).
"use strict";

(() => {
  const { t, el, api, yuan, int, lang } = LB;
  const L = {
    zh: {
      figures: "计分指标（按本轮规则）", figure: "指标", mine: "本人", median: "全场中位数", rank_on: "排名",
      gmv_fen: "成交额（元）", net_gmv_fen: "净成交额（元）", paid_orders: "支付订单", viewers: "观看人数",
      data_score: "数据分", total: "总分", current_rank: "当前排名", likes: "点赞", comments: "评论", shares: "分享",
      new_followers: "新增关注", not_reported: "平台未提供", per_minute: "每分钟成交额（元）", of_previous: "占上一步",
    },
    en: {
      figures: "Scored figures (this round's rules)", figure: "Figure", mine: "Contestant", median: "Field median",
      rank_on: "Rank", gmv_fen: "GMV (¥)", net_gmv_fen: "Net GMV (¥)", paid_orders: "Paid orders", viewers: "Viewers",
      data_score: "Data score", total: "Total", current_rank: "Current rank", likes: "Likes", comments: "Comments",
      shares: "Shares", new_followers: "New followers", not_reported: "not reported", per_minute: "Sales per minute (¥)",
      of_previous: "of the step before",
    },
  }[lang];
  const f = (k) => L[k] ?? t(k);
  const paren = (s) => (lang === "en" ? ` (${s})` : `（${s}）`);

  document.getElementById("figures-title").textContent = f("figures");
  document.getElementById("minute-title").textContent = f("per_minute");
  for (const [id, k] of [["fh-figure", "figure"], ["fh-value", "mine"], ["fh-median", "median"], ["fh-rank", "rank_on"]]) {
    document.getElementById(id).textContent = f(k);
  }

  let minuteChart = null;

  function show(key, v, conv) {
    if (v === null || v === undefined) return "–";
    if (key.endsWith("_fen")) return yuan(v);
    if (key === "conversion_ppm") return (v / 10000).toFixed(2) + "%";
    if (key === "data_score" || key === "total") return LB.points(v, 2);
    return int(v);
  }

  let wanted = null; // the contestant whose figures the page wants now (answers for others are dropped)

  async function refreshFigures(roundId, contestantId) {
    wanted = contestantId;
    const d = await api("GET", `/api/v1/judge/figures?round=${encodeURIComponent(roundId)}&contestant=${encodeURIComponent(contestantId)}`);
    if (wanted !== contestantId) return;
    const convName = lang === "en" ? d.conversion.label_en.split(":")[0] : d.conversion.name;
    document.getElementById("figures-title").textContent =
      `${f("figures")} · ${f("current_rank")} ${d.rank ?? "–"} / ${d.field}`;
    document.querySelector("#figures tbody").replaceChildren(...d.figures.map((x) => el("tr", { "data-figure": x.key },
      el("td", { title: x.key === "conversion_ppm" ? (lang === "en" ? d.conversion.label_en : d.conversion.label_zh) : null },
        x.key === "conversion_ppm" ? convName : f(x.key)),
      el("td", { class: "num value" }, show(x.key, x.value)),
      el("td", { class: "num median" }, show(x.key, x.median)),
      el("td", { class: "num rank" }, x.rank ? `${x.rank} / ${x.of}` : "–"))));
    document.getElementById("interactions").replaceChildren(...Object.entries(d.interactions).map(([k, v]) =>
      el("div", { class: "kpi", "data-interaction": k }, el("div", { class: "k" }, f(k)),
        el("div", { class: "v" + (v === null ? " muted" : "") }, v === null ? f("not_reported") : int(v)))));
    // the funnel: the steps the platform reports, each with its share of the step before
    if (LB.funnelChart) {
      LB.funnelChart().setOption({
        animation: false, tooltip: { trigger: "item" },
        series: [{
          type: "funnel", sort: "none", left: "10%", width: "80%", top: 10, bottom: 10, gap: 2,
          label: { formatter: (p) => p.data.label },
          data: d.funnel.map((s) => ({ name: t(s.step), value: s.value,
            label: `${t(s.step)} ${int(s.value)}` + (s.of_previous_ppm === null ? "" : paren(`${f("of_previous")} ${(s.of_previous_ppm / 10000).toFixed(1)}%`)) })),
        }],
      }, true);
      document.body.dataset.funnelSteps = d.funnel.map((s) => s.step).join(",");
    }
    document.body.dataset.figuresFor = contestantId;
  }

  // per-minute sales: the difference of the cumulative GMV between the last points of consecutive minutes
  function minuteBars(points) {
    const byMin = new Map();
    for (const p of points) byMin.set(Math.floor(p.ts_ms / 60000) * 60000, p.gmv_fen);
    const out = [];
    let prev = 0;
    for (const [m, v] of [...byMin.entries()].sort((a, b) => a[0] - b[0])) {
      out.push([m, Math.max(0, v - prev)]);
      prev = v;
    }
    return out;
  }

  function drawMinutes(points) {
    if (!minuteChart) minuteChart = echarts.init(document.getElementById("chart-minute"), null, { renderer: "canvas" });
    const bars = minuteBars(points);
    minuteChart.setOption({
      animation: false, tooltip: { trigger: "axis" }, grid: { left: 60, right: 16, top: 20, bottom: 28 },
      xAxis: { type: "time", axisLabel: { formatter: (v) => LB.time(v).slice(0, 5) } },
      yAxis: { type: "value", axisLabel: { formatter: (v) => (v / 100).toLocaleString() } },
      series: [{ name: f("per_minute"), type: "bar", data: bars }],
    }, true);
    document.body.dataset.minuteBars = String(bars.length);
  }

  LB.onJudgeSelect = (roundId, contestantId, series) => {
    if (series) drawMinutes(series.points);
    else refreshFigures(roundId, contestantId).catch(() => {});
  };
})();
