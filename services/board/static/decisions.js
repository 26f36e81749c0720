// Operators' console, decisions on results: 取消资格 and its reversal, tie decisions (待定 until recorded),
// appeals (filed within the stage's window, then decided, with their remedy) and each round's freeze chain
// (what changed and why; verification). Every write goes through /api/v1/ops/… with the session's CSRF token.
(() => {
  "use strict";
  const { el, api, dateTime } = LB;
  const zh = (document.documentElement.lang || "zh-CN") !== "en";
  const L = (a, b) => (zh ? a : b);
  let contestId = null;
  let rounds = [];

  const card = el("div", { class: "card", id: "decisions-card" });
  const box = (title, ...kids) => el("div", { class: "card" }, el("h2", {}, title), ...kids);
  const field = (label, input) => el("div", { class: "form-row" }, el("label", {}, label), input);
  const sel = (name, opts) => el("select", { name }, ...opts.map(([v, tx]) => el("option", { value: v }, tx)));
  const input = (name, attrs = {}) => el("input", { name, ...attrs });
  const msgEl = () => el("div", { class: "msg" });

  function roundOptions(withContest) {
    const o = rounds.map((r) => [r.id, r.name]);
    return withContest ? [["", L("整个赛事", "Whole contest")], ...o] : o;
  }
  function contestantOptions() {
    const seen = new Map();
    for (const r of rounds) for (const i of r.items) seen.set(i.contestant_id, i.display_name);
    return [...seen].map(([id, name]) => [id, `${name} (${id})`]);
  }

  async function submit(form, msg, path, body, done) {
    msg.className = "msg";
    try {
      const res = await api("POST", path, body);
      const rf = (res.refreeze || []).map((r) => `${r.round_id}: ${r.status}`).join(", ");
      msg.className = "msg ok";
      msg.textContent = L("已记录", "Recorded") + (rf ? ` · ${L("重新冻结", "re-freeze")} ${rf}` : "");
      if (done) done(res);
      refresh();
    } catch (e) {
      msg.textContent = e.message;
    }
  }

  function forms() {
    const m1 = msgEl();
    const f1 = el("form", {},
      field(L("轮次", "Round"), sel("round_id", roundOptions(true))),
      field(L("选手", "Contestant"), sel("contestant_id", contestantOptions())),
      field(L("理由", "Reason"), el("textarea", { name: "reason", rows: 2, cols: 40, required: true })),
      field(L("批准人", "Approver"), input("approver", { required: true })),
      el("button", { class: "primary", type: "submit" }, L("取消资格", "Disqualify")), m1);
    f1.onsubmit = (ev) => {
      ev.preventDefault();
      submit(f1, m1, "/api/v1/ops/exclusions", {
        contest_id: contestId, contestant_id: f1.contestant_id.value, round_id: f1.round_id.value || null,
        excluded: true, reason: f1.reason.value, approver: f1.approver.value,
      });
    };
    const m2 = msgEl();
    const f2 = el("form", {},
      field(L("轮次", "Round"), sel("round_id", roundOptions(false))),
      field(L("组别", "Group"), input("group_id", { required: true, value: "g1" })),
      field(L("先后（逗号分隔）", "Order (comma separated)"), input("order", { required: true, placeholder: "c3,c2" })),
      field(L("理由", "Reason"), el("textarea", { name: "reason", rows: 2, cols: 40, required: true })),
      field(L("批准人", "Approver"), input("approver", { required: true })),
      el("button", { class: "primary", type: "submit" }, L("记录并列决定", "Record tie decision")), m2);
    f2.onsubmit = (ev) => {
      ev.preventDefault();
      submit(f2, m2, "/api/v1/ops/tie-decisions", {
        contest_id: contestId, round_id: f2.round_id.value, group_id: f2.group_id.value.trim(),
        order: f2.order.value.split(",").map((s) => s.trim()).filter(Boolean), reason: f2.reason.value,
        approver: f2.approver.value,
      });
    };
    const m3 = msgEl();
    const f3 = el("form", {},
      field(L("轮次", "Round"), sel("round_id", roundOptions(false))),
      field(L("选手", "Contestant"), sel("contestant_id", contestantOptions())),
      field(L("申诉人", "Filed by"), input("filed_by", { required: true })),
      field(L("申诉内容", "Claim"), el("textarea", { name: "claim", rows: 2, cols: 40, required: true })),
      field(L("证据", "Evidence"), input("evidence_ref")),
      el("button", { class: "primary", type: "submit" }, L("登记申诉", "File appeal")), m3);
    f3.onsubmit = (ev) => {
      ev.preventDefault();
      submit(f3, m3, "/api/v1/ops/appeals", {
        contest_id: contestId, round_id: f3.round_id.value, contestant_id: f3.contestant_id.value,
        filed_by: f3.filed_by.value, claim: f3.claim.value, evidence_ref: f3.evidence_ref.value || null,
      });
    };
    const m4 = msgEl();
    const f4 = el("form", {},
      field(L("申诉编号", "Appeal id"), input("appeal_id", { required: true })),
      field(L("处理", "Decision"), sel("decision", [["upheld", L("支持", "Upheld")], ["partly_upheld", L("部分支持", "Partly upheld")], ["rejected", L("驳回", "Rejected")]])),
      field(L("加减分（可空）", "Delta (optional)"), input("delta", { placeholder: "+2.5" })),
      field(L("理由", "Reason"), el("textarea", { name: "reason", rows: 2, cols: 40, required: true })),
      field(L("批准人", "Approver"), input("approver", { required: true })),
      el("button", { class: "primary", type: "submit" }, L("记录处理决定", "Record decision")), m4);
    f4.onsubmit = (ev) => {
      ev.preventDefault();
      const delta = f4.delta.value.trim().replace(/^\+/, "");
      submit(f4, m4, `/api/v1/ops/appeals/${encodeURIComponent(f4.appeal_id.value.trim())}/decision`, {
        contest_id: contestId, decision: f4.decision.value, reason: f4.reason.value, approver: f4.approver.value,
        remedy: delta ? { kind: "delta", value: delta, component: null } : null,
      });
    };
    return el("div", { class: "grid2" },
      box(L("取消资格", "Disqualification"), f1), box(L("并列决定（待定）", "Tie decision (pending ties)"), f2),
      box(L("申诉登记", "File an appeal"), f3), box(L("申诉处理", "Decide an appeal"), f4));
  }

  function table(head, rows) {
    return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows));
  }

  async function history(roundId) {
    const h = await api("GET", `/api/v1/ops/freeze-history?contest=${encodeURIComponent(contestId)}&round=${encodeURIComponent(roundId)}`);
    const out = [];
    for (const f of h.freezes) {
      out.push(el("p", {}, el("b", {}, `${L("冻结", "Freeze")} ${f.sequence}`), ` ${dateTime(f.frozen_at)} · ${f.frozen_by} · `,
        el("code", {}, f.content_hash.slice(0, 16) + "…"), f.previous_content_hash ? ` ← ${f.previous_content_hash.slice(0, 16)}…` : "",
        f.reason ? ` · ${L("原因", "why")}: ${f.reason}` : ""));
      if (f.changes.length) {
        out.push(table([L("选手", "Contestant"), L("名次", "Place"), L("总分", "Total"), L("奖项", "Award")],
          f.changes.map((c) => el("tr", {}, el("td", {}, c.contestant_id),
            el("td", {}, `${(c.before || {}).rank ?? "–"} → ${(c.after || {}).rank ?? "–"}`),
            el("td", {}, `${(c.before || {}).total_display ?? "–"} → ${(c.after || {}).total_display ?? "–"}`),
            el("td", {}, `${(c.before || {}).award_id || "–"} → ${(c.after || {}).award_id || "–"}`)))));
      }
    }
    return out;
  }

  async function refresh() {
    if (!contestId) return;
    const d = await api("GET", "/api/v1/ops/decisions?contest=" + encodeURIComponent(contestId));
    const lists = el("div", {});
    lists.append(el("h2", {}, L("取消资格记录", "Disqualifications")), table(
      [L("选手", "Contestant"), L("范围", "Scope"), L("状态", "State"), L("理由", "Reason"), L("批准人", "Approver"), ""],
      d.exclusions.map((x) => el("tr", {}, el("td", {}, x.contestant_id), el("td", {}, x.round_id || L("整个赛事", "contest")),
        el("td", {}, x.excluded ? L("取消资格", "disqualified") : L("已恢复", "reinstated")), el("td", {}, x.reason), el("td", {}, x.approver),
        el("td", {}, x.excluded ? el("button", { class: "link", onclick: () => reinstate(x) }, L("恢复资格", "Reinstate")) : "")))));
    lists.append(el("h2", {}, L("并列决定", "Tie decisions")), table(
      [L("轮次", "Round"), L("组别", "Group"), L("先后", "Order"), L("理由", "Reason"), L("批准人", "Approver")],
      d.tie_decisions.map((x) => el("tr", {}, el("td", {}, x.round_id), el("td", {}, x.group_id), el("td", {}, x.order.join(" > ")),
        el("td", {}, x.reason), el("td", {}, x.approver)))));
    lists.append(el("h2", {}, L("申诉", "Appeals")), table(
      [L("编号", "Id"), L("选手", "Contestant"), L("轮次", "Round"), L("内容", "Claim"), L("证据", "Evidence"), L("处理", "Decision")],
      d.appeals.map((x) => el("tr", {}, el("td", {}, x.appeal_id), el("td", {}, x.contestant_id || ""), el("td", {}, x.round_id || ""),
        el("td", {}, x.claim || ""), el("td", {}, x.evidence_ref || ""), el("td", {}, x.decision || L("待处理", "pending"))))));
    const windows = Object.entries(d.appeal_windows || {}).filter(([, w]) => w)
      .map(([r, w]) => `${r}: ${dateTime(w.opens_ms)} – ${dateTime(w.closes_ms)} (${w.hours} h)`);
    if (windows.length) lists.append(el("p", { class: "muted" }, L("申诉期 ", "Appeal windows ") + windows.join(" · ")));
    lists.append(el("h2", {}, L("冻结记录", "Freeze history")));
    for (const r of rounds) {
      const verifyMsg = el("span", { class: "msg" });
      const verify = el("button", { class: "link", onclick: async () => {
        verifyMsg.textContent = "…";
        try {
          const v = await api("POST", "/api/v1/ops/freeze-verify", { contest_id: contestId, round_id: r.id });
          verifyMsg.className = v.verifies ? "msg ok" : "msg";
          verifyMsg.textContent = v.verifies ? L("冻结链核验通过", "chain verifies") : L("核验失败", "does NOT verify") + (v.problem ? `: ${v.problem}` : "");
        } catch (e) { verifyMsg.textContent = e.message; }
      } }, L("核验", "Verify"));
      lists.append(el("h3", {}, `${r.name} (${r.id}) `, verify, " ", verifyMsg), ...(await history(r.id)));
    }
    card.replaceChildren(el("h2", {}, L("成绩裁定：取消资格 · 并列 · 申诉", "Decisions: disqualification · ties · appeals")), lists);
  }

  async function reinstate(x) {
    const reason = prompt(L("恢复资格的理由", "Reason for reinstating"));
    if (!reason) return;
    const approver = prompt(L("批准人", "Approver"));
    if (!approver) return;
    try {
      await api("POST", "/api/v1/ops/exclusions", {
        contest_id: contestId, contestant_id: x.contestant_id, round_id: x.round_id, excluded: false,
        exclusion_id: x.exclusion_id, reason, approver,
      });
      refresh();
    } catch (e) { alert(e.message); }
  }

  async function load() {
    const s = document.getElementById("contest");
    if (!s || !s.value) return false;
    if (s.value === contestId) return true;
    contestId = s.value;
    rounds = (await api("GET", "/api/v1/ops/rounds?contest=" + encodeURIComponent(contestId))).rounds;
    const formsBox = document.getElementById("decisions-forms");
    formsBox.replaceChildren(forms());
    await refresh();
    return true;
  }

  const main = document.querySelector("main.console");
  const formsBox = el("div", { id: "decisions-forms" });
  main.append(card, formsBox);
  setInterval(() => load().catch(() => {}), 2000);
  setInterval(() => refresh().catch(() => {}), 15000);
})();
