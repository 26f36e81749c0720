// What the big screens share (the leaderboard screen and the collective screen): the contest's clock,
// 万/亿 amounts, fitting text into its box, the contest's colours and logo, the stream with reconnection,
// and the screen's "is the data moving" state. Loaded after common.js.
"use strict";

const SK = (() => {
  const { int, time, el } = LB;
  // The screens' own words (common.js has the shared ones)
  const words = {
    zh: {
      data_until: "数据截至", data_stopped: "数据停止于", ago: "前", provisional_board: "暂定成绩（实时）",
      provisional_ended: "暂定成绩（待冻结）", big_screen: "大屏", goes_live: "开播", slot_done: "已下播",
      final_board: "最终成绩", final_figures: "平台终值", final_figures_note: "标“平台终值”的选手已由平台最终数据替换直播实时数据",
      now_live: "正在直播", next_live: "下一位", slot_left: "本场剩余", starts_in_short: "后开播", no_one_live: "",
      page: "页", judges_col: "评委分", provisional: "暂定", award: "奖项", members: "人",
      collective: "集体排名", collective_of: "按成员总分", not_live: "（该规则按得分项汇总，冻结后公布）",
      ineligible: "人数不足", headline_gmv: "总成交额", trend5: "近5分钟", round_ends_in: "距本轮直播结束",
      sum: "合计", mean: "平均", top_k_sum: "前{k}名合计", top_k_mean: "前{k}名平均", org_level: { district: "区县", city: "市", team: "团队" },
      leaderboard_link: "个人排名", collective_link: "集体排名",
    },
    en: {
      data_until: "data until", data_stopped: "Data stopped at", ago: "ago", provisional_board: "Provisional (live)",
      provisional_ended: "Provisional (not frozen yet)", big_screen: "Big screen", goes_live: "live", slot_done: "Finished",
      final_board: "Final results", final_figures: "Final data", final_figures_note: "Marked rows use the platform's final figures in place of the live ones",
      now_live: "Live now", next_live: "Next", slot_left: "left", starts_in_short: "to start", no_one_live: "",
      page: "page", judges_col: "Judges", provisional: "Provisional", award: "Award", members: "members",
      collective: "Collective ranking", collective_of: "members' totals", not_live: "(aggregates a component: published at freeze)",
      ineligible: "too few members", headline_gmv: "Total GMV", trend5: "last 5 min", round_ends_in: "Live part ends in",
      sum: "sum", mean: "mean", top_k_sum: "top {k} sum", top_k_mean: "top {k} mean", org_level: { district: "District", city: "City", team: "Team" },
      leaderboard_link: "Individual", collective_link: "Collective",
    },
  };
  const t = (key) => words[LB.lang][key] ?? LB.t(key);

  // Money in integer 分 as 元: below 1万 with two decimals; from 1万 as 万 (亿 from 1亿) with two decimals,
  // rounded half up on integers (no float cents). English: M from a million, B from a billion.
  function money(fen) {
    if (fen === null || fen === undefined) return "–";
    const neg = fen < 0;
    const abs = Math.abs(fen);
    const units = LB.lang === "en"
      ? [[100 * 1_000_000_000, "B"], [100 * 1_000_000, "M"]]
      : [[100 * 100_000_000, "亿"], [100 * 10_000, "万"]];
    const hit = units.find(([min]) => abs >= min);
    if (!hit) return LB.yuan(fen);
    const div = hit[0] / 100; // 分 per hundredth of the unit
    const hundredths = Math.floor((abs + div / 2) / div);
    return (neg ? "-" : "") + int(Math.floor(hundredths / 100)) + "." + String(hundredths % 100).padStart(2, "0") + hit[1];
  }
  // Counts from 10万 as 万 with one decimal (English: K from 100,000, M from a million).
  function count(n) {
    if (n === null || n === undefined) return "–";
    const a = Math.abs(n);
    if (a < 100_000) return int(n);
    const [div, unit] = LB.lang === "en" ? (a >= 1_000_000 ? [1_000_000, "M"] : [1_000, "K"]) : [10_000, "万"];
    const tenths = Math.round((n * 10) / div);
    return int(Math.trunc(tenths / 10)) + "." + Math.abs(tenths % 10) + unit;
  }

  // The contest's clock: contest time = contest_ms + (server wall time − wall_ms) × speed. The server's wall
  // time is ours plus the largest offset seen (a snapshot can only be late, never early).
  let offset = null;
  function noteServerTime(serverNowMs) {
    const o = serverNowMs - Date.now();
    if (offset === null || o > offset) offset = o;
  }
  const serverNow = () => Date.now() + (offset || 0);
  // A wall-clock time (an arrival, a computation) as the contest's clock shows it.
  function onContestClock(clock, wallMs) {
    if (!clock || clock.kind !== "sim" || !wallMs) return wallMs;
    return Math.floor(clock.contest_ms + (wallMs - clock.wall_ms) * clock.speed);
  }
  function contestNow(clock) {
    const w = serverNow();
    if (!clock || clock.kind !== "sim") return w;
    return Math.floor(clock.contest_ms + (w - clock.wall_ms) * clock.speed);
  }

  // Shrink a box's font until its text fits its width (and height), down to minPx.
  function fit(node, maxPx, minPx) {
    let size = maxPx;
    node.style.fontSize = size + "px";
    while (size > minPx && (node.scrollWidth > node.clientWidth + 0.5 || node.scrollHeight > node.clientHeight + 0.5)) {
      size -= 1;
      node.style.fontSize = size + "px";
    }
    return size;
  }

  // The contest's title is never cut: one line from 50 px down to 34 px, else two lines down to 16 px.
  function fitTitle(node) {
    node.classList.remove("two");
    if (fit(node, 50, 34) > 34 || node.scrollWidth <= node.clientWidth + 0.5) return;
    node.classList.add("two");
    fit(node, 36, 16);
  }

  function applyLook(display, stage) {
    const c = (display && display.colours) || {};
    if (c.primary) stage.style.setProperty("--primary", c.primary);
    if (c.accent) stage.style.setProperty("--accent", c.accent);
    if (c.background) stage.style.setProperty("--bg", c.background);
    const logo = document.getElementById("logo");
    if (logo) {
      const src = display && display.logo;
      logo.hidden = !src;
      if (src && logo.getAttribute("src") !== src) logo.setAttribute("src", src);
    }
  }

  // The stage is 1920×1080, scaled to the window.
  function scaleStage(stage) {
    const f = () => {
      const s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
      stage.style.transform = `scale(${s})`;
    };
    window.addEventListener("resize", f);
    f();
  }

  // One EventSource; after an HTTP error (the browser gives up) retry every 3 s.
  function stream(params, onSnapshot, onConn) {
    let es = null;
    let retry = null;
    const open = () => {
      es = new EventSource("/api/v1/stream/leaderboard?" + params);
      es.addEventListener("snapshot", (ev) => { onConn(true); onSnapshot(JSON.parse(ev.data)); });
      es.onopen = () => {
        document.body.dataset.connects = String(parseInt(document.body.dataset.connects || "0", 10) + 1);
        onConn(true);
      };
      es.onerror = () => {
        onConn(false);
        if (es.readyState === EventSource.CLOSED && !retry) retry = setTimeout(() => { retry = null; open(); }, 3000);
      };
    };
    open();
  }

  // The footer's state: 实时 only while connected AND the data moves; otherwise when it stopped.
  //   live | quiet (connected, no new data for stale_after: "数据停止于 …") | ended | down (reconnecting)
  function dataState(connected, snap, newestWallMs, ended) {
    if (!connected) return { kind: "down", text: t("reconnecting") };
    if (!snap) return { kind: "down", text: "…" };
    const now = serverNow();
    if (ended) {
      const until = time(onContestClock(snap.clock, newestWallMs));
      return { kind: "ended", text: newestWallMs ? `${t("ended")} · ${t("data_until")} ${until}` : t("ended") };
    }
    if (!newestWallMs) return { kind: "quiet", text: t("no_data") };
    const age = now - newestWallMs;
    if (age > snap.stale_after_ms) {
      const at = time(onContestClock(snap.clock, newestWallMs));
      return { kind: "quiet", text: `${t("data_stopped")} ${at}（${LB.duration(age)} ${t("ago")}）` };
    }
    return { kind: "live", text: t("live") };
  }

  const PLATFORMS = { douyin: "抖音", kuaishou: "快手", wechat_channels: "视频号", wechat: "视频号" };
  const PLATFORMS_EN = { douyin: "Douyin", kuaishou: "Kuaishou", wechat_channels: "Channels", wechat: "Channels" };
  const platformName = (p) => (LB.lang === "en" ? PLATFORMS_EN : PLATFORMS)[p] || p;
  const platformBadge = (p) => el("span", { class: "pf pf-" + p, text: platformName(p) });

  return { t, money, count, noteServerTime, serverNow, contestNow, onContestClock, fit, fitTitle, applyLook, scaleStage, stream, dataState, platformBadge };
})();
