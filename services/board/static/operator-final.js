// The operators' console: rooms waiting for their platform's final figures (issue 14.3). Self-contained: the
// card #waiting-final; the rows come from GET /api/v1/ops/health (waiting_final) for the contest chosen in
// the console's selector (the same report operator.js reads, so the server's cache answers both). A room is
// listed from its stream's end until its final figures reach the archive (docs/ingest.md, "Final figures").
"use strict";

(() => {
  const { el, api, lang, dateTime, duration } = LB;
  const body = document.querySelector("#waiting-final tbody");
  if (!body) return;
  const text = lang === "en"
    ? { title: "Rooms waiting for final figures", ended: "Ended", for: "Waiting", none: "No room is waiting for final figures", more: "more" }
    : { title: "等待最终数据的直播间", ended: "下播时间", for: "已等待", none: "没有等待最终数据的直播间", more: "更多" };
  for (const k of ["title", "ended", "for"]) document.getElementById("waiting-final-" + k).textContent = text[k];

  async function refresh() {
    const sel = document.getElementById("contest");
    if (!sel || !sel.value) return;
    const h = await api("GET", "/api/v1/ops/health?contest=" + encodeURIComponent(sel.value));
    const rows = h.waiting_final || [];
    body.replaceChildren(...(rows.length
      ? rows.slice(0, 200).map((r) => el("tr", { "data-room": r.room_id },
        el("td", { title: r.contestant_id }, r.display_name || r.contestant_id), el("td", {}, LB.t(r.platform)), el("td", {}, r.room_id),
        el("td", {}, dateTime(r.ended_at)), el("td", { class: "num" }, duration(r.waiting_ms))))
      : [el("tr", {}, el("td", { colspan: "5", class: "muted" }, text.none))]));
    if (rows.length > 200) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, `+${rows.length - 200} ${text.more}`)));
  }

  setTimeout(() => refresh().catch(() => {}), 1500);
  setInterval(() => refresh().catch(() => {}), 10000);
})();
