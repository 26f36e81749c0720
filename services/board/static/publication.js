// 公示: the published result of a frozen round (/publication?contest=…&round=…), public and read-only.
// Everything comes from /api/v1/contests/{c}/rounds/{r}/publication (the frozen round in ClickHouse).
"use strict";

(() => {
  const { el, lang, params } = LB;
  const dict = {
    zh: {
      print: "打印 / 存为 PDF", awards: "获奖名单", collective: "集体奖", verification: "规则版本与核验",
      title: "成绩公示", place: "名次", standing: "并列/取消资格/待定", name: "姓名", org: "单位", total: "总分",
      award: "奖项", advances: "晋级", notes: "说明", yes: "是", value: "成绩", members: "计入人数",
      frozen_at: "冻结时间（北京时间）", frozen_by: "冻结人", sequence: "冻结序号", content_hash: "冻结哈希",
      previous_hash: "上一次冻结哈希", digest: "结果摘要", event_count: "计入事件数", rule_version: "规则版本",
      rule_mismatch: "注意：当前比赛文件的规则版本与冻结时不同", reason: "重新冻结原因",
      missing: "请在地址中指定 ?contest=…&round=…", dl_results: "成绩表", dl_awards: "获奖名单",
      none: "无", organiser: "主办单位：",
    },
    en: {
      print: "Print / save as PDF", awards: "Award winners", collective: "Collective awards",
      verification: "Rule version and verification", title: "Official results", place: "Place",
      standing: "Tie / disqualified / pending", name: "Name", org: "Organisation", total: "Total", award: "Award",
      advances: "Advances", notes: "Notes", yes: "yes", value: "Result", members: "Members counted",
      frozen_at: "Frozen at (Beijing time)", frozen_by: "Frozen by", sequence: "Freeze no.", content_hash: "Freeze hash",
      previous_hash: "Previous freeze hash", digest: "Result digest", event_count: "Events counted",
      rule_version: "Rule version", rule_mismatch: "Note: the contest file's rule version differs from the frozen one",
      reason: "Re-freeze reason", missing: "Add ?contest=…&round=… to the address", dl_results: "Results",
      dl_awards: "Award list", none: "none", organiser: "Organiser: ",
    },
  };
  const p = (k) => dict[lang][k] ?? k;
  document.querySelectorAll("[data-p]").forEach((n) => { n.textContent = p(n.dataset.p); });
  LB.langLink(document.getElementById("lang"));
  document.getElementById("print").onclick = () => window.print();
  const status = document.getElementById("status");

  function table(head, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, head.map(([k, cls]) => el("th", { class: cls || null }, p(k))))),
      el("tbody", {}, rows));
  }

  function standing(r) {
    return r.standing ? r.standing.split("、").map((s) => el("span", { class: "tag" }, s)) : "";
  }

  function groupTable(g) {
    const rows = g.rows.map((r) => el("tr", { class: r.status === "excluded" ? "excluded" : r.status, "data-contestant": r.contestant_id },
      el("td", { class: "num" }, r.place === null ? "–" : String(r.place)),
      el("td", { class: "standing" }, standing(r)),
      el("td", {}, r.name),
      el("td", {}, r.organisation),
      el("td", { class: "num" }, r.total_display),
      el("td", {}, r.award || ""),
      el("td", {}, r.advances ? p("yes") : ""),
      el("td", { class: "notes" }, r.notes.join("；"))));
    return [el("h3", {}, g.group_name), table([["place", "num"], ["standing"], ["name"], ["org"], ["total", "num"], ["award"], ["advances"], ["notes"]], rows)];
  }

  function render(doc) {
    document.title = `${doc.contest_name} ${doc.round_name} ${p("title")}`;
    document.getElementById("organiser").textContent = p("organiser") + doc.organiser;
    document.getElementById("title").textContent = `${doc.contest_name}`;
    document.getElementById("subtitle").textContent = `${doc.round_name} · ${p("title")}`;
    document.getElementById("groups").replaceChildren(...doc.groups.flatMap(groupTable));
    if (doc.awards.length) {
      document.getElementById("awards-sec").hidden = false;
      document.getElementById("awards").replaceChildren(table([["award"], ["place", "num"], ["name"], ["org"], ["total", "num"]],
        doc.awards.map((r) => el("tr", {},
          el("td", {}, r.award), el("td", { class: "num" }, String(r.place) + (r.tied ? "（并列）" : "")),
          el("td", {}, r.name), el("td", {}, r.organisation), el("td", { class: "num" }, r.total_display)))));
    }
    if (doc.collective.length) {
      document.getElementById("collective-sec").hidden = false;
      document.getElementById("collective").replaceChildren(...doc.collective.flatMap((c) => [el("h3", {}, c.name),
        table([["place", "num"], ["org"], ["value", "num"], ["members", "num"], ["award"]], c.rows.map((r) => el("tr", {},
          el("td", { class: "num" }, r.place === null ? "–" : String(r.place)), el("td", {}, r.organisation),
          el("td", { class: "num" }, r.value), el("td", { class: "num" }, String(r.members)), el("td", {}, r.award || ""))))]));
    }
    const facts = [
      ["frozen_at", doc.frozen_at_text], ["frozen_by", doc.frozen_by], ["sequence", String(doc.sequence)],
      ["content_hash", doc.content_hash], ["previous_hash", doc.previous_content_hash || p("none")],
      ["digest", doc.leaderboard_digest], ["event_count", String(doc.event_count)],
      ["rule_version", doc.rule_version || doc.file_rule_version],
    ];
    if (doc.reason) facts.push(["reason", doc.reason]);
    document.getElementById("facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, p(k)), el("dd", { id: "f-" + k }, v)]));
    const how = document.getElementById("verify-how");
    how.replaceChildren(...doc.verify.slice(2).map((line) => el("p", {}, line)));
    if (!doc.rule_version_matches) how.prepend(el("p", { class: "status" }, p("rule_mismatch")));
    document.getElementById("verify-sec").hidden = false;
    const base = `/api/v1/contests/${encodeURIComponent(doc.contest_id)}/rounds/${encodeURIComponent(doc.round_id)}/publication/files/`;
    document.getElementById("downloads").replaceChildren(
      ...[["results.xlsx", "dl_results"], ["results.csv", "dl_results"], ["awards.xlsx", "dl_awards"], ["awards.csv", "dl_awards"]]
        .map(([f, k]) => el("a", { href: base + f, download: "" }, `${p(k)} ${f.split(".")[1].toUpperCase()}`)));
  }

  async function load() {
    const contest = params.get("contest"), round = params.get("round");
    if (!contest || !round) { status.textContent = p("missing"); return; }
    try {
      const doc = await LB.api("GET", `/api/v1/contests/${encodeURIComponent(contest)}/rounds/${encodeURIComponent(round)}/publication`);
      render(doc);
      document.body.dataset.ready = "1";
    } catch (e) {
      status.textContent = e.message;
      document.body.dataset.ready = "error";
    }
  }
  load();
})();
