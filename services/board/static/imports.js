// 数据导入 (operators): upload a 报名表 / official data / 作品登记 sheet, see every problem (sheet, row,
// column) and the diff before anything is written, then import. Server: services/board/organiser_api.py.
"use strict";

(() => {
  const { el, api, lang, dateTime, int } = LB;
  const dict = {
    zh: {
      title: "数据导入", upload: "上传表格", kind: "类型", k_registrations: "报名表（选手与账号）",
      k_data: "官方数据（平台后台导出）", k_entries: "作品登记（视频 → 选手）", template: "下载模板",
      file: "文件", preview: "检查并预览", apply: "确认导入", report: "检查结果", severity: "级别", sheet: "工作表",
      row: "行", column: "列", message: "问题", change: "变化", key: "编号", name: "名称", fields: "变更内容", rows: "行数",
      history: "导入记录", error: "错误", warning: "提示", added: "新增", changed: "修改", removed: "表中没有",
      unchanged: "不变", ok_preview: "检查通过：确认无误后点「确认导入」。", has_errors: "有错误，不能导入；请改正后重新上传。",
      applied: "已导入", events: "条事件", read: "读取", refused: "已拒绝", preview_o: "预览",
      one_entry: "作品登记（单条）", contestant_id: "选手编号", video_id: "视频ID", round_opt: "轮次（只有一轮可不填）",
      platform_opt: "平台（可不填）", account_opt: "发布账号（默认选手本人）", copy_of: "原视频ID（副本时填）",
      withdrawn: "撤回该登记", register: "登记", registered: "已登记", no_change: "与现有登记相同，未写入",
      n_added: "新增", n_changed: "修改", n_unchanged: "不变", n_removed: "表中没有", n_rows: "读取行数",
      n_events: "写入事件", n_errors: "错误", n_warnings: "提示", row_numbers: "行号",
      registrations: "报名表", data: "官方数据", entries: "作品登记",
    },
    en: {
      title: "Imports", upload: "Upload a sheet", kind: "Kind", k_registrations: "Registrations (contestants, accounts)",
      k_data: "Official data (platform export)", k_entries: "Entries (video → contestant)", template: "Download template",
      file: "File", preview: "Check and preview", apply: "Import", report: "Report", severity: "Severity", sheet: "Sheet",
      row: "Row", column: "Column", message: "Problem", change: "Change", key: "Id", name: "Name", fields: "Fields",
      rows: "Rows", history: "Import history", error: "error", warning: "warning", added: "added", changed: "changed",
      removed: "not in sheet", unchanged: "unchanged", ok_preview: "No errors: press Import to write it.",
      has_errors: "Errors found: nothing can be imported; fix the sheet and upload it again.", applied: "Imported",
      events: "events", read: "read", refused: "refused", preview_o: "preview",
      one_entry: "Register one entry", contestant_id: "Contestant id", video_id: "Video id",
      round_opt: "Round (optional with one round)", platform_opt: "Platform (optional)",
      account_opt: "Account showing it (default: the contestant's)", copy_of: "Original video id (for a copy)",
      withdrawn: "Withdraw this entry", register: "Register", registered: "Registered",
      no_change: "Same as the registration in force: nothing written",
      n_added: "added", n_changed: "changed", n_unchanged: "unchanged", n_removed: "not in sheet", n_rows: "rows read",
      n_events: "events", n_errors: "errors", n_warnings: "warnings", row_numbers: "Rows",
      registrations: "registrations", data: "official data", entries: "entries",
    },
  };
  const i = (k) => dict[lang][k] ?? k;
  document.querySelectorAll("[data-i]").forEach((n) => { n.textContent = i(n.dataset.i); });
  LB.translate();
  LB.langLink(document.getElementById("lang"));

  let contestId = LB.params.get("contest") || null;
  let csrf = null;
  let lastOk = false;
  const kindSel = document.getElementById("kind");
  const fileIn = document.getElementById("file");
  const msg = document.getElementById("msg");
  const applyBtn = document.getElementById("apply");

  function templateLink() {
    document.getElementById("template").href =
      `/api/v1/ops/organiser/template?contest=${encodeURIComponent(contestId)}&kind=${kindSel.value}`;
  }

  async function send(apply) {
    const file = fileIn.files[0];
    if (!file) return null;
    const url = `/api/v1/ops/organiser/import?contest=${encodeURIComponent(contestId)}&kind=${kindSel.value}&apply=${apply ? 1 : 0}`;
    const resp = await fetch(url, {
      method: "POST", credentials: "same-origin", body: file,
      headers: { "X-CSRF-Token": csrf, "X-File-Name": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" },
    });
    const data = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((data && data.error && data.error.message) || "HTTP " + resp.status);
    return data;
  }

  function show(rep) {
    document.getElementById("report").hidden = false;
    const c = rep.counts || {};
    const parts = Object.entries(c).map(([k, v]) => `${i("n_" + k)} ${int(v)}`);
    document.getElementById("summary").textContent = `${rep.file_name} · ${i(rep.outcome === "preview" ? "preview_o" : rep.outcome)} · ${parts.join(" · ")}`;
    document.querySelector("#problems tbody").replaceChildren(...rep.problems.map((p) => el("tr", { class: p.severity },
      el("td", {}, i(p.severity)), el("td", {}, p.sheet), el("td", { class: "num" }, p.row ?? ""),
      el("td", {}, p.column + (p.field ? ` (${p.field})` : "")), el("td", {}, p.message))));
    document.querySelector("#changes tbody").replaceChildren(...(rep.changes || []).map((ch) => el("tr", { class: ch.status },
      el("td", {}, i(ch.status)), el("td", {}, ch.contestant_id || ch.key || ""), el("td", {}, ch.name || ""),
      el("td", {}, (ch.fields || []).join(", ")), el("td", {}, (ch.rows || []).join(", ")))));
  }

  document.getElementById("upload").onsubmit = async (ev) => {
    ev.preventDefault();
    msg.textContent = "";
    applyBtn.disabled = true;
    try {
      const rep = await send(false);
      show(rep);
      lastOk = rep.ok;
      applyBtn.disabled = !rep.ok;
      msg.textContent = rep.ok ? i("ok_preview") : i("has_errors");
    } catch (e) {
      msg.textContent = e.message;
    }
    refreshHistory();
  };
  applyBtn.onclick = async () => {
    if (!lastOk) return;
    applyBtn.disabled = true;
    try {
      const rep = await send(true);
      show(rep);
      msg.textContent = rep.outcome === "applied" ? `${i("applied")}: ${rep.counts.events} ${i("events")}` : i("has_errors");
    } catch (e) {
      msg.textContent = e.message;
    }
    lastOk = false;
    refreshHistory();
  };
  fileIn.onchange = () => { applyBtn.disabled = true; lastOk = false; };
  kindSel.onchange = () => { templateLink(); applyBtn.disabled = true; lastOk = false; };

  document.getElementById("entry").onsubmit = async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const emsg = document.getElementById("e-msg");
    emsg.textContent = "";
    const body = { contest_id: contestId, withdrawn: form.withdrawn.checked };
    for (const k of ["contestant_id", "video_id", "round", "platform", "account_id", "copy_of"]) {
      if (form[k].value.trim()) body[k] = form[k].value.trim();
    }
    try {
      const rep = await api("POST", "/api/v1/ops/organiser/entry", body);
      show(rep);
      emsg.textContent = !rep.ok ? i("has_errors") : rep.counts.events ? i("registered") : i("no_change");
    } catch (e) {
      emsg.textContent = e.message;
    }
    refreshHistory();
  };

  async function refreshHistory() {
    const doc = await api("GET", `/api/v1/ops/organiser/imports?contest=${encodeURIComponent(contestId)}`);
    document.querySelector("#history tbody").replaceChildren(...doc.imports.map((r) => el("tr", {},
      el("td", {}, dateTime(r.at_ms)), el("td", {}, r.actor), el("td", {}, i(r.kind)), el("td", {}, i(r.outcome === "preview" ? "preview_o" : r.outcome)),
      el("td", {}, r.file_name), el("td", {}, el("code", { class: "hash" }, r.content_sha256.slice(0, 16))),
      el("td", { class: "num" }, int(r.rows)), el("td", { class: "num" }, int(r.events)))));
  }

  async function start(user) {
    document.getElementById("who").textContent = user.display_name || user.username;
    csrf = (await api("GET", "/api/v1/auth/session")).csrf_token;
    const contests = (await api("GET", "/api/v1/contests")).contests;
    if (!contestId || !contests.find((c) => c.id === contestId)) contestId = contests.length ? contests[0].id : null;
    const sel = document.getElementById("contest");
    sel.replaceChildren(...contests.map((c) => el("option", { value: c.id, selected: c.id === contestId }, c.name)));
    sel.onchange = () => { contestId = sel.value; templateLink(); refreshHistory(); };
    templateLink();
    await refreshHistory();
    document.body.dataset.ready = "1";
  }
  LB.ensureLogin("operator", start);
})();
