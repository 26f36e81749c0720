// Shared by the three pages: language (zh-CN first, ?lang=en), number/time formatting, the JSON API
// with the CSRF header, and the login panel of the consoles. No framework, nothing from a CDN.
"use strict";

const LB = (() => {
  const params = new URLSearchParams(location.search);
  const lang = params.get("lang") === "en" ? "en" : "zh";
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";

  const dict = {
    zh: {
      rank: "排名", name: "选手", org: "单位", gmv: "成交额（元）", orders: "成交订单", viewers: "观看人数",
      excluded: "取消资格", pending: "待定", tied: "并列",
      conversion: "转化率", data_score: "数据分", judge_score: "评委分", total: "总分", stale: "数据中断",
      no_data: "暂无数据", live: "实时", reconnecting: "重连中…", updated: "更新于", field_gmv: "总成交额",
      field_orders: "总订单", field_viewers: "总观看", contestants: "参赛选手", ends_in: "距结束",
      starts_in: "距开始", ended: "已结束", choose: "请选择赛事与轮次", login: "登录", logout: "退出",
      username: "用户名", password: "密码", login_failed: "登录失败", language: "English",
      judge_console: "评委席", operator_console: "运营控制台", round: "轮次", on_stage: "正在直播",
      closed: "已结束评分", open: "评分中", submit: "提交评分", submitted: "已提交", max: "满分",
      my_scores: "我的评分", others_scores: "其他评委评分", hidden_until_close: "本项目结束后公布",
      history: "提交记录（更正为新记录）", online: "在线人数", funnel: "转化漏斗", exposure: "曝光",
      click: "点击", order: "下单", paid: "成交", uv_value: "UV价值（元）", gpm: "GPM（元/千次观看）",
      refund_rate: "退款率", net_gmv: "直播间净成交额（平台实时）", gmv_short: "直播间成交额（平台实时）", frozen: "本轮已冻结",
      select_contestant: "请选择选手", alerts: "告警", no_alerts: "无告警", ingestion: "采集健康",
      platform: "平台", feeds: "数据源", stale_feeds: "停滞", max_age: "最大延迟", errors: "错误",
      requests: "请求", error_ratio: "错误率", rejected: "拒收推送", dead_letters: "死信",
      reason: "原因", source: "来源", received: "接收时间", lag: "评分消费延迟", partition: "分区",
      end_offset: "末端位点", committed: "已提交位点", judges: "评委账号", issue: "签发",
      judge_id: "评委编号", groups: "组别", display_name: "显示名称", password_once: "初始密码（仅显示一次）",
      rounds: "比赛进程", items: "选手项目", set_stage: "上场", close_item: "结束评分", reopen_item: "重新开放",
      freeze: "冻结本轮", adjustments: "申诉调整", kind: "类型", delta: "加减分", override: "改判为",
      value: "分值", component: "得分项（空=总分）", approver: "批准人", record: "记录", audit: "审计日志",
      when: "时间", who: "操作人", action: "操作", target: "对象", from: "来源地址", outcome: "结果",
      room: "直播间", contestant: "选手", age: "数据延迟", events: "事件数", contest: "赛事",
      ingest_unreachable: "采集服务指标不可达", state: "状态", saved: "已保存", confirm_freeze: "确认冻结本轮？冻结后成绩不可更改。",
      users: "账号", role: "角色", disabled: "已停用", active: "有效", disable: "停用", none: "无",
      scorer_group: "评分消费组", total_lag: "总延迟", judge: "评委", by: "操作人", error: "错误", criterion: "评分项",
      reconciliation: "销售对账（订单明细 vs 平台汇总）", reconciliation_help: "差额超出赛事容差的选手；数据一致后自动消除。",
      ledger_gmv: "订单成交额（元）", platform_gmv: "平台成交额（元）", ledger_orders: "订单数", platform_orders: "平台订单数",
      explaining_orders: "相关订单", late_refund: "售后截止后退款", held_refund: "未见支付的退款", over_refund: "超额退款",
      refunded_order: "已退款订单", no_mismatch: "无对账差异",
      imports_page: "数据导入", publication_page: "成绩公示",
      // dead-letter re-drive (operator-redrive.js)
      redrive_title: "死信重投", redrive_help: "原因修复后（如补录账号、配置密钥），将所选死信重新送入采集处理；重复投递会自动去重。",
      all_platforms: "全部平台", redrive_since: "接收时间起（北京时间）", redrive_until: "接收时间止（不含）",
      redrive_preview: "预览", redrive_send: "重投", redrive_would: "将重投", redrive_sent: "已重投",
      redrive_selected: "选中", redrive_skipped: "跳过", redrive_confirm: "确认重投所选死信？",
      // consoles (issue 12): platforms, severities, alerts acknowledged/muted, login errors
      douyin: "抖音", kuaishou: "快手", wechat_channels: "视频号", warning: "警告", critical: "严重", info: "提示",
      finished: "已下播", ok: "正常", ack: "确认", acknowledged: "已确认", mute: "静音", mute_minutes: "静音（分钟）",
      unmute: "取消静音", muted_alerts: "已静音告警", muted_until: "静音至", pending_status: "待处理", frozen_status: "已冻结",
      done_status: "已完成", failed_status: "失败", operator: "运营",
      last_ok: "最近成功应答", token_expiry: "令牌到期", token_left: "剩", quota_left: "剩余配额",
      // the audit log's actions and outcomes (operator.js); an action without a name here shows its id
      a_login: "登录", a_logout: "退出", a_judge_score: "评委评分", a_alert_ack: "确认告警", a_alert_mute: "静音告警",
      a_alert_unmute: "取消静音", a_forbidden: "越权访问", a_csrf: "CSRF 校验失败", a_auth: "未登录访问",
      a_issue_judge: "签发评委账号", a_reissue_judge: "重新签发评委账号", a_disable_user: "停用账号", a_stage: "设置上场",
      a_item_closed: "结束评分", a_item_open: "重新开放评分", a_freeze: "冻结本轮", a_score_adjustment: "申诉调整",
      a_redrive_dead_letters: "死信重投", a_exclusion: "取消资格", a_reinstatement: "恢复资格", a_tie_decision: "并列裁定",
      a_appeal_filed: "提出申诉", a_appeal_decided: "申诉裁定", a_verify: "核验冻结", a_import: "数据导入",
      o_ok: "成功", o_failed: "失败", o_refused: "拒绝", o_throttled: "限流", o_refused_aggregate: "拒绝（汇总）",
      o_refused_closed: "拒绝（已结束）", o_requested: "已请求", o_done: "已完成", o_pending: "待处理",
      why_gmv_fen: "成交额不符", why_orders_paid: "订单数不符", why_refund_amount_fen: "退款额不符",
      src_webhook: "推送", src_poll: "轮询", src_push: "推送", src_scorer: "评分服务", src_scoring: "评分服务", src_redrive: "重投",
      failed: "失败", stale_room: "数据中断", error_rate: "错误率过高", dlq_growth: "死信增长", scorer_lag: "评分消费延迟",
      lag_unknown: "评分延迟未知", finished_feeds: "已下播",
      err_bad_credentials: "用户名或密码错误", err_too_many_attempts: "失败次数过多，请稍后再试",
      err_csrf: "页面已过期，请刷新后重试", err_wrong_role: "此账号无权使用本页面", err_network: "网络错误",
      err_retry_in: "秒后可重试", err_http: "请求失败",
    },
    en: {
      rank: "Rank", name: "Contestant", org: "Organisation", gmv: "GMV (¥)", orders: "Paid orders",
      excluded: "Disqualified", pending: "Pending", tied: "Tied",
      viewers: "Viewers", conversion: "Conversion", data_score: "Data", judge_score: "Judges", total: "Total",
      stale: "Feed stale", no_data: "No data", live: "Live", reconnecting: "Reconnecting…", updated: "Updated",
      field_gmv: "Total GMV", field_orders: "Orders", field_viewers: "Viewers", contestants: "Contestants",
      ends_in: "Ends in", starts_in: "Starts in", ended: "Ended", choose: "Choose a contest and round",
      login: "Log in", logout: "Log out", username: "Username", password: "Password",
      login_failed: "Login failed", language: "中文", judge_console: "Judges' console",
      operator_console: "Operators' console", round: "Round", on_stage: "On stage", closed: "Closed",
      open: "Open", submit: "Submit scores", submitted: "Submitted", max: "max", my_scores: "My scores",
      others_scores: "Other judges", hidden_until_close: "Published when the item closes",
      history: "Submissions (corrections are new entries)", online: "Online now", funnel: "Funnel",
      exposure: "Exposure", click: "Click", order: "Order", paid: "Paid", uv_value: "UV value (¥)",
      gpm: "GPM (¥ per 1,000 views)", refund_rate: "Refund rate", net_gmv: "Room net GMV (platform, live)", gmv_short: "Room GMV (platform, live)",
      frozen: "Round frozen", select_contestant: "Select a contestant", alerts: "Alerts", no_alerts: "No alerts",
      ingestion: "Ingestion health", platform: "Platform", feeds: "Feeds", stale_feeds: "Stale",
      max_age: "Max age", errors: "Errors", requests: "Requests", error_ratio: "Error ratio",
      rejected: "Rejected pushes", dead_letters: "Dead letters", reason: "Reason", source: "Source",
      received: "Received", lag: "Scorer lag", partition: "Partition", end_offset: "End offset",
      committed: "Committed", judges: "Judge credentials", issue: "Issue", judge_id: "Judge id",
      groups: "Groups", display_name: "Display name", password_once: "Password (shown once)",
      rounds: "Rounds", items: "Items", set_stage: "On stage", close_item: "Close", reopen_item: "Reopen",
      freeze: "Freeze round", adjustments: "Adjustments", kind: "Kind", delta: "Delta", override: "Override",
      value: "Value", component: "Component (empty = total)", approver: "Approver", record: "Record",
      audit: "Audit log", when: "When", who: "Who", action: "Action", target: "Target", from: "From",
      outcome: "Outcome", room: "Room", contestant: "Contestant", age: "Age", events: "Events",
      contest: "Contest", ingest_unreachable: "Ingest metrics unreachable", state: "State", saved: "Saved",
      confirm_freeze: "Freeze this round? Results can no longer change.", users: "Users", role: "Role",
      disabled: "disabled", active: "active", disable: "Disable", none: "none", scorer_group: "Scorer group",
      total_lag: "Total lag", judge: "Judge", by: "By", error: "Error", criterion: "Criterion",
      reconciliation: "Sales reconciliation (orders vs platform totals)",
      reconciliation_help: "Contestants whose difference exceeds the contest's tolerance; cleared when the figures meet.",
      ledger_gmv: "Orders GMV (¥)", platform_gmv: "Platform GMV (¥)", ledger_orders: "Orders", platform_orders: "Platform orders",
      explaining_orders: "Orders involved", late_refund: "refund after cut-off", held_refund: "refund without payment",
      over_refund: "over-refund", refunded_order: "refunded", no_mismatch: "No differences",
      imports_page: "Imports", publication_page: "Published results",
      redrive_title: "Re-drive dead letters",
      redrive_help: "Once the cause is fixed (account registered, secret configured), send the selected dead letters through ingestion again; repeats are de-duplicated.",
      all_platforms: "All platforms", redrive_since: "Received from (Beijing time)", redrive_until: "Received before",
      redrive_preview: "Preview", redrive_send: "Re-drive", redrive_would: "Would re-drive", redrive_sent: "Re-driven",
      redrive_selected: "selected", redrive_skipped: "skipped", redrive_confirm: "Re-drive the selected dead letters?",
      douyin: "Douyin", kuaishou: "Kuaishou", wechat_channels: "WeChat Channels", warning: "warning", critical: "critical", info: "info",
      finished: "Ended", ok: "OK", ack: "Acknowledge", acknowledged: "Acknowledged", mute: "Mute", mute_minutes: "Mute (minutes)",
      unmute: "Unmute", muted_alerts: "Muted alerts", muted_until: "muted until", pending_status: "pending", frozen_status: "frozen",
      done_status: "done", failed_status: "failed", operator: "Operator",
      last_ok: "Last answer", token_expiry: "Token expiry", token_left: "left", quota_left: "Quota left",
      a_login: "log in", a_logout: "log out", a_judge_score: "judge score", a_alert_ack: "alert acknowledged",
      a_alert_mute: "alert muted", a_alert_unmute: "alert unmuted", a_forbidden: "forbidden", a_csrf: "CSRF refused",
      a_auth: "not logged in", a_issue_judge: "judge credential issued", a_reissue_judge: "judge credential re-issued",
      a_disable_user: "user disabled", a_stage: "on stage", a_item_closed: "item closed", a_item_open: "item reopened",
      a_freeze: "freeze", a_score_adjustment: "adjustment", a_redrive_dead_letters: "dead letters re-driven",
      a_exclusion: "exclusion", a_reinstatement: "reinstatement", a_tie_decision: "tie decision", a_appeal_filed: "appeal filed",
      a_appeal_decided: "appeal decided", a_verify: "freeze verified", a_import: "import",
      o_ok: "ok", o_failed: "failed", o_refused: "refused", o_throttled: "throttled", o_refused_aggregate: "refused (aggregated)",
      o_refused_closed: "refused (closed)", o_requested: "requested", o_done: "done", o_pending: "pending",
      why_gmv_fen: "GMV differs", why_orders_paid: "orders differ", why_refund_amount_fen: "refunds differ",
      src_webhook: "webhook", src_poll: "poll", src_push: "push", src_scorer: "scorer", src_scoring: "scorer", src_redrive: "re-drive",
      failed: "failed", stale_room: "Feed stale", error_rate: "High error rate", dlq_growth: "Dead letters growing", scorer_lag: "Scorer lag",
      lag_unknown: "Scorer lag unknown", finished_feeds: "Ended",
      err_bad_credentials: "Wrong username or password", err_too_many_attempts: "Too many failed attempts, try again later",
      err_csrf: "The page expired; reload and try again", err_wrong_role: "This account may not use this page", err_network: "Network error",
      err_retry_in: "s until you may retry", err_http: "Request failed",
    },
  };
  const t = (key) => dict[lang][key] ?? key;

  const TZ = "Asia/Shanghai";
  const clockFmt = new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const dateFmt = new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
  });
  const intFmt = new Intl.NumberFormat("en-US");

  // Money arrives in integer 分; shown as 元 with two decimals, computed on integers (no float cents).
  function yuan(fen) {
    if (fen === null || fen === undefined) return "–";
    const neg = fen < 0;
    const abs = Math.abs(fen);
    const whole = Math.floor(abs / 100);
    const cents = String(abs % 100).padStart(2, "0");
    return (neg ? "-" : "") + intFmt.format(whole) + "." + cents;
  }
  // An exact decimal string ("55.087419232095") rounded half-up to `places` digits, on the digits
  // themselves (no float): the scorer's figures are exact to 10⁻¹² and are shown as the contest rounds them.
  function points(text, places) {
    if (text === null || text === undefined || text === "") return "–";
    const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(String(text));
    if (!m) return String(text);
    const [, sign, whole, frac = ""] = m;
    const digits = (whole + frac.padEnd(places + 1, "0").slice(0, places + 1)).split("").map(Number);
    const up = digits.pop() >= 5;
    for (let i = digits.length - 1; up && i >= 0; i--) {
      if (digits[i] === 9) digits[i] = 0;
      else { digits[i] += 1; break; }
      if (i === 0) digits.unshift(1);
    }
    const all = digits.join("");
    const cut = all.length - places;
    const intPart = all.slice(0, cut).replace(/^0+(?=\d)/, "");
    const out = places > 0 ? intPart + "." + all.slice(cut) : intPart;
    return (sign && /[1-9]/.test(out) ? "-" : "") + out;
  }
  const int = (n) => (n === null || n === undefined ? "–" : intFmt.format(n));
  const pct = (ppm, digits = 2) => (ppm === null || ppm === undefined ? "–" : (ppm / 10000).toFixed(digits) + "%");
  const time = (ms) => (ms ? clockFmt.format(new Date(ms)) : "–");
  const dateTime = (ms) => (ms ? dateFmt.format(new Date(ms)) + " " + clockFmt.format(new Date(ms)) : "–");
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? String(h).padStart(2, "0") + ":" : "") + String(m).padStart(2, "0") + ":" + String(r).padStart(2, "0");
  }

  function langLink(el) {
    const p = new URLSearchParams(location.search);
    if (lang === "en") p.delete("lang"); else p.set("lang", "en");
    el.href = location.pathname + (p.toString() ? "?" + p : "");
    el.textContent = t("language");
  }

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  // --- API with the session's CSRF token -----------------------------------------------------------
  let csrf = null;
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    const resp = await fetch(path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (_) { /* empty or not JSON */ }
    if (!resp.ok) {
      const err = new ApiError(resp.status, data);
      err.retryAfter = Number(resp.headers.get("Retry-After")) || null;
      throw err;
    }
    return data;
  }

  // The consoles: resolve the session, or show the login panel and wait for a successful login.
  async function ensureLogin(role, onReady) {
    try {
      const s = await api("GET", "/api/v1/auth/session");
      if (s.user.role !== role) throw new ApiError(403, { error: { message: role } });
      csrf = s.csrf_token;
      return onReady(s.user);
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403)) throw e;
    }
    const panel = document.getElementById("login");
    panel.hidden = false;
    const form = panel.querySelector("form");
    const msg = panel.querySelector(".msg");
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      msg.textContent = "";
      try {
        const pre = await api("GET", "/api/v1/auth/csrf");
        csrf = pre.csrf_token;
        const res = await api("POST", "/api/v1/auth/login", {
          username: form.username.value, password: form.password.value,
        });
        if (res.user.role !== role) {
          msg.textContent = t("login_failed") + (lang === "en" ? ": " : "：") + t("err_wrong_role");
          return;
        }
        csrf = res.csrf_token;
        form.password.value = "";
        panel.hidden = true;
        onReady(res.user);
      } catch (e) {
        msg.textContent = t("login_failed") + (lang === "en" ? ": " : "：") + errorText(e);
      }
    };
  }

  // An API error as the page's language says it: known codes translated, the server's English detail
  // (which names the field) only on the English page or for codes without a translation.
  function errorText(e) {
    if (!(e instanceof ApiError)) return t("err_network");
    const code = e.body && e.body.error && e.body.error.code;
    if (code && dict[lang]["err_" + code]) {
      const wait = e.retryAfter ? `（${e.retryAfter} ${t("err_retry_in")}）` : "";
      return t("err_" + code) + (lang === "en" ? wait.replace("（", " (").replace("）", ")") : wait);
    }
    return lang === "en" ? `${t("err_http")} (${e.status}): ${e.message}` : `${t("err_http")}（${e.status}）：${e.message}`;
  }

  async function logout() {
    try { await api("POST", "/api/v1/auth/logout", {}); } finally { location.reload(); }
  }

  function translate(root = document) {
    root.querySelectorAll("[data-t]").forEach((n) => { n.textContent = t(n.dataset.t); });
    root.querySelectorAll("[data-t-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.tPlaceholder); });
  }

  return { lang, t, yuan, points, int, pct, time, dateTime, duration, langLink, el, api, ApiError, ensureLogin, logout, translate, params, errorText };
})();
