// The operators' console: re-drive dead letters once their cause is fixed (issue 14.5). Self-contained: the
// form in the dead-letters card; preview = dry run, re-drive = the real thing (confirmed), both through
// POST /api/v1/ops/dead-letters/redrive with the session's CSRF token; the server records and audits it.
"use strict";

(() => {
  const { t, int } = LB;
  const form = document.getElementById("redrive-form");
  if (!form) return;
  const out = document.getElementById("r-result");

  // datetime-local has no zone: the console's times are Beijing time (UTC+8), like everything it shows
  function ms(id) {
    const v = document.getElementById(id).value;
    if (!v) return undefined;
    const full = v.length === 16 ? v + ":00" : v;
    const at = Date.parse(full + "+08:00");
    return Number.isNaN(at) ? undefined : at;
  }

  function selection() {
    const body = {};
    const platform = document.getElementById("r-platform").value;
    const reason = document.getElementById("r-reason").value.trim();
    if (platform) body.platform = platform;
    if (reason) body.reason = reason;
    const since = ms("r-since");
    const until = ms("r-until");
    if (since !== undefined) body.since_ms = since;
    if (until !== undefined) body.until_ms = until;
    return body;
  }

  function show(res) {
    const head = res.dry_run ? t("redrive_would") : `${t("redrive_sent")} (${res.request_id})`;
    const parts = [`${head}: ${int(res.dry_run ? res.redrivable : res.sent)} / ${int(res.selected)} ${t("redrive_selected")}`];
    for (const [src, s] of Object.entries(res.skipped || {})) parts.push(`${t("redrive_skipped")} ${int(s.count)} · ${src}: ${s.why}`);
    for (const [key, n] of Object.entries(res.by_reason || {})) parts.push(`${int(n)} · ${key}`);
    out.replaceChildren(...parts.map((p) => LB.el("div", {}, p)));
  }

  async function run(dryRun) {
    out.textContent = "…";
    try {
      show(await LB.api("POST", "/api/v1/ops/dead-letters/redrive", { ...selection(), dry_run: dryRun }));
    } catch (e) {
      out.textContent = e.message;
    }
  }

  document.getElementById("r-preview").onclick = () => run(true);
  form.onsubmit = (ev) => {
    ev.preventDefault();
    if (confirm(t("redrive_confirm"))) run(false);
  };
})();
