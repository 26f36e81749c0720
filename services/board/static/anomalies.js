// Anomaly alerts (issue 12) on the operators' and judges' consoles: the detector's anomaly_detected events
// with their evidence, from GET /api/v1/anomalies. Advisory: they never change a score, and the card says so.
// Operators: the whole contest (#anomalies-card on /operator); judges: the selected contestant (/judge,
// which calls LB.showAnomalies after each selection).
"use strict";

(() => {
  const { t, el, api, dateTime, lang } = LB;
  const names = {
    zh: {
      anomalies: "异常提示", anomalies_help: "检测器依据事件日志给出的提示，附证据；不改变任何成绩，需人工核实。",
      no_anomalies: "无异常", evidence: "证据", online_spike: "在线人数异常飙升", gmv_without_orders: "成交额无对应订单",
      refund_spike: "下播后退款激增", conversion_outlier: "转化率远离全场", outside_slot: "直播时段外开播",
      online_before: "之前在线", online_after: "之后在线", dt_ms: "间隔", ratio_ppm: "比例", snapshot_gmv_fen: "直播间成交额",
      ledger_gmv_fen: "订单成交额", gap_fen: "差额", snapshot_orders_paid: "直播间订单数", ledger_orders_paid: "订单明细数",
      refunds_after_end: "下播后退款笔数", refund_fen: "退款额", paid_fen: "支付额", ended_at: "下播时间",
      conversion_ppm: "下单转化率", field_median_ppm: "全场中位数", field_rooms: "参与比较的直播间", orders_paid: "支付订单",
      viewers_uv: "观看人数", round_id: "轮次", slot_start: "时段开始", slot_end: "时段结束", observed_at: "观测时间",
      outside_ms: "偏离时段",
    },
    en: {
      anomalies: "Anomaly alerts", anomalies_help: "Hints the detector draws from the event log, with evidence; they never change a result and need checking by a person.",
      no_anomalies: "No anomalies", evidence: "Evidence", online_spike: "Online count spike", gmv_without_orders: "GMV without matching orders",
      refund_spike: "Refund spike after the stream", conversion_outlier: "Conversion far outside the field", outside_slot: "Streaming outside the live slot",
      online_before: "online before", online_after: "online after", dt_ms: "interval", ratio_ppm: "ratio", snapshot_gmv_fen: "room GMV",
      ledger_gmv_fen: "orders GMV", gap_fen: "gap", snapshot_orders_paid: "room orders", ledger_orders_paid: "orders in the ledger",
      refunds_after_end: "refunds after the end", refund_fen: "refunded", paid_fen: "paid", ended_at: "ended at",
      conversion_ppm: "conversion", field_median_ppm: "field median", field_rooms: "rooms compared", orders_paid: "paid orders",
      viewers_uv: "viewers", round_id: "round", slot_start: "slot start", slot_end: "slot end", observed_at: "observed at",
      outside_ms: "outside by",
    },
  }[lang];
  const n = (k) => names[k] ?? t(k);

  function value(e) {
    if (e.value === null || e.value === undefined) return e.text ?? "–";
    if (e.name.endsWith("_fen")) return "¥" + LB.yuan(e.value);
    if (e.name.endsWith("_ppm")) return (e.value / 10000).toFixed(2) + "%";
    if (e.name.endsWith("_ms") && e.name !== "observed_at") return LB.duration(e.value);
    if (["ended_at", "slot_start", "slot_end", "observed_at"].includes(e.name)) return dateTime(e.value);
    return LB.int(e.value);
  }

  function item(a, withName) {
    return el("li", { class: "anomaly", "data-detector": a.detector, "data-contestant": a.contestant_id },
      el("span", { class: "badge " + (a.severity === "critical" ? "bad" : "warn") }, n(a.detector)), " ",
      withName ? el("b", {}, `${a.display_name || a.contestant_id}${a.platform ? " · " + t(a.platform) : ""} `) : null,
      el("span", { class: "muted" }, dateTime(a.window_end)), el("div", {}, a.summary),
      el("div", { class: "muted evidence" }, `${n("evidence")}${lang === "en" ? ": " : "："}`,
        a.evidence.map((e) => `${n(e.name)} ${value(e)}`).join(" · ")));
  }

  // box: where; query: the API's; current(): false once the answer is no longer wanted (another selection)
  async function show(box, query, withName, current = () => true) {
    const res = await api("GET", "/api/v1/anomalies?" + query);
    if (!current()) return res.anomalies;
    box.replaceChildren(el("p", { class: "muted" }, n("anomalies_help")),
      el("ul", { class: "alerts anomalies" }, ...(res.anomalies.length ? res.anomalies.map((a) => item(a, withName))
        : [el("li", { class: "muted" }, n("no_anomalies"))])));
    return res.anomalies;
  }

  LB.anomalyTitle = () => n("anomalies");
  LB.showAnomalies = show;

  // the operators' console: the contest's anomalies, refreshed with the rest
  const opBox = document.getElementById("anomalies");
  if (opBox) {
    document.querySelector("#anomalies-card h2").textContent = n("anomalies");
    const refresh = () => {
      const contest = document.getElementById("contest").value || LB.params.get("contest");
      if (contest) show(opBox, "contest=" + encodeURIComponent(contest), true).catch(() => {});
    };
    setInterval(refresh, 5000);
    setTimeout(refresh, 1000);
    document.getElementById("contest").addEventListener("change", refresh);
  }
})();
