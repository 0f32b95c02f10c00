// The trainer's dashboard: the chain live in three lanes, one message in detail, the scenario run, the exams
// and the upload-quality report. Plain JS served by the sandbox itself: no framework, no CDN, no build step.
(function () {
  "use strict";

  // ---- words: Chinese by default, English on the switch -------------------------------------------------
  var I18N = {
    zh: {
      title: "医保影像云沙箱 · 培训看板",
      subtitle: "医疗机构 → 地方影像云数据共享中心 → 医保影像云索引共享模块",
      scenario: "场景", resetFirst: "运行前清空", run: "▶ 运行", reset: "清空",
      tabChain: "链路实况", tabExams: "检查", tabQuality: "上传质量",
      hopFilter: "跳", allHops: "全部", hop1: "第一跳", hop2: "第二跳",
      hopLine1: "第一跳 saveExamRpotImgInfo ⟶", hopLine2: "第二跳 saveExamRpotImgIndx ⟶", about: "场景说明",
      outcomeFilter: "结果", allOutcomes: "全部",
      o_ok: "全部成功", o_partial: "部分失败", o_failed: "全部失败", o_rejected: "报文被拒收", o_transport: "传输故障", o_aborted: "客户端中途断开",
      follow: "跟随最新",
      empty: "还没有交互。选择一个场景并点击「运行」，或让您的系统向沙箱发送报文。",
      pickHint: "点击左侧任一报文查看请求与应答；被拒收的字段会高亮并在旁边给出中文错误。",
      status: "状态", allStatuses: "全部", s_indexed: "已建索引", s_in_progress: "处理中", s_failed: "未建索引（失败）",
      csvZh: "下载 CSV（中文列名）", csvEn: "CSV（English columns）",
      conn_live: "● 实时", conn_connecting: "连接中…", conn_down: "已断开，正在重连…",
      role_hospital: "医疗机构", role_center: "地方影像云数据共享中心", role_province: "医保影像云索引共享模块",
      open: "打开", notRunning: "未运行", external: "外部系统",
      sentMessages: "发送报文", answers: "应答", records: "记录", retrying: "重试中 {n}", outbox: "转发队列",
      pending: "待转发 {n}", sending: "转发中 {n}", forwarded: "已转发", forwardFailed: "转发失败", indexes: "已建索引",
      held: "已暂停 {n}（省平台 4xx，待重新发送）", expired: "超过重试期限 {n}", oldest: "最久未送达 {n}",
      age_s: "{n} 秒", age_m: "{n} 分钟", age_h: "{n} 小时",
      received: "收到记录", attemptMax: "最多第 {n} 次",
      count: "{n} 条报文", countFiltered: "{n} 条报文（已筛选）", nRecords: "{n} 条",
      lg_ok: "全部成功（succFlag 1）", lg_partial: "部分失败（含 0 或 -1）", lg_failed: "全部失败（-1）",
      lg_rejected: "报文被整批拒收（code≠0）", lg_transport: "传输故障（超时、断开、5xx）", lg_aborted: "客户端在请求完成前断开",
      noScenario: "未加载场景。从上方选择一个场景并点击「运行」。",
      steps: "步骤", expectations: "预期", faults: "当前故障",
      st_running: "运行中", st_passed: "通过", st_failed: "未通过", st_cancelled: "已取消", st_loaded: "已加载",
      observed: "实际：", seconds: "{s} 秒",
      hopTitle1: "第一跳 saveExamRpotImgInfo", hopTitle2: "第二跳 saveExamRpotImgIndx",
      side_server: "接收方记录", side_client: "发送方记录（对端未记录）", ms: "{n} 毫秒", attemptN: "第 {n} 次尝试",
      envelopeProblems: "报文头", answerMsg: "应答：", recordN: "第 {n} 条", noAnswer: "无应答",
      reportPage: "报告页", imagePage: "影像页", dicom: "DICOM 下载（WADO-RS）", dicomZip: "DICOM（zip）",
      requestJson: "请求报文（JSON）", responseJson: "应答报文（JSON）", masked: "脱敏显示",
      dataString: "data 以 JSON 字符串发送（勘误 #13），此处展开显示",
      missing: "（缺失）", loading: "加载中…", step: "步骤", problemsN: "{e} 个错误、{w} 个提示",
      transport: "传输故障：{t}", httpStatus: "HTTP {n}", noResponse: "（无应答）",
      col_index: "医保影像云索引号", col_inst: "机构", col_day: "检查日期", col_type: "类型", col_status: "状态",
      col_reason: "原因 / 字段", col_links: "链接", col_msgs: "报文",
      examsPage: "第 {from}–{to} 条，共 {total} 条", noExams: "还没有检查。",
      q_sent: "已发送检查", q_indexed: "已建索引", q_progress: "处理中", q_failed: "失败",
      q_onTime: "按时上传率（{hours} 小时内 · 沙箱设置 quality_on_time_hours）", q_exposure: "预计减收（元）", q_empty: "还没有数据。",
      q_defsTitle: "口径说明",
      q_def_exam: ["检查", "一个医保影像云索引号 hiImgIndx；机构取记录的 fixmedinsCode（缺省取报文的 infCode），日期取 examDate。"],
      q_def_sent: ["已发送", "至少出现在一个第一跳报文中（任一次尝试、任一应答）。"],
      q_def_indexed: ["已建索引", "省级医保影像云索引共享模块对该检查应答 succFlag 1 或 0（索引已保存）。"],
      q_def_failed: ["失败", "未建索引，且最后一次结果为拒收或故障：共享中心拒收（-1）、第一跳报文被整批拒收、未送达共享中心、共享中心放弃转发、省级拒收（-1 或整批拒收）。每个失败检查计一个原因（到达的最远环节）及其应答点名的字段。"],
      q_def_progress: ["处理中", "已保存在共享中心，等待或正在转发到省级。"],
      q_def_ontime: ["按时上传（沙箱设置 quality_on_time_hours = {hours}）", "出具报告（rpotPubDate，缺省为检查日期当天结束）后 {hours} 小时内在省级建立索引。这个时限是沙箱自己的设置 quality_on_time_hours（默认 24，可在配置文件中修改），不是通知的规定：通知原文只要求「12月31日前在全省医保信息平台影像云索引共享模块上传医保影像云索引信息」，没有规定单条检查的上传时限。到达时间按医疗机构时钟：首个携带该检查的第一跳报文的交易时间 infTime，加上日志测得的从该报文到省级应答的时长。按时上传率 = 按时上传 ÷ 已发送。"],
      q_def_radiology: ["放射检查", "影像检查类型 imgExamType 为 1 X线、2 CT 或 3 MRI（国家医保局放射检查类价格项目）；超声、核医学与其他不计。"],
      q_def_exposure: ["预计减收", "{yuan} 元 × 已发送但未在省级建立索引（失败或处理中）的放射检查数（川医保办发〔2025〕15号：不能提供数字影像处理和上传存储服务的，放射检查价格减收 5 元）。"],
      toastStarted: "已开始：{name}", toastReset: "已清空全部数据、日志与故障", failedRequest: "请求失败：{msg}"
    },
    en: {
      title: "Imaging-cloud sandbox · trainer's dashboard",
      subtitle: "Hospital → regional sharing center → provincial index module",
      scenario: "Scenario", resetFirst: "Reset first", run: "▶ Run", reset: "Reset",
      tabChain: "Live chain", tabExams: "Exams", tabQuality: "Upload quality",
      hopFilter: "Hop", allHops: "All", hop1: "Hop 1", hop2: "Hop 2",
      hopLine1: "hop 1 saveExamRpotImgInfo ⟶", hopLine2: "hop 2 saveExamRpotImgIndx ⟶", about: "About this scenario",
      outcomeFilter: "Outcome", allOutcomes: "All",
      o_ok: "All saved", o_partial: "Partly failed", o_failed: "All failed", o_rejected: "Message refused", o_transport: "Transport fault", o_aborted: "Client went away",
      follow: "Follow latest",
      empty: "No exchange yet. Pick a scenario and press Run, or point your system at the sandbox.",
      pickHint: "Click any message on the left to see its request and response; rejected fields are highlighted with their Chinese error.",
      status: "Status", allStatuses: "All", s_indexed: "Indexed", s_in_progress: "In progress", s_failed: "Not indexed (failed)",
      csvZh: "Download CSV (Chinese columns)", csvEn: "CSV (English columns)",
      conn_live: "● live", conn_connecting: "connecting…", conn_down: "disconnected, retrying…",
      role_hospital: "Hospital", role_center: "Regional sharing center", role_province: "Provincial index module",
      open: "open", notRunning: "not running", external: "external",
      sentMessages: "Messages sent", answers: "Answers", records: "Records", retrying: "retrying {n}", outbox: "Outbox",
      pending: "waiting {n}", sending: "sending {n}", forwarded: "Forwarded", forwardFailed: "Failed", indexes: "Indexes stored",
      held: "held {n} (province 4xx, awaiting retry)", expired: "expired {n}", oldest: "oldest undelivered {n}",
      age_s: "{n} s", age_m: "{n} min", age_h: "{n} h",
      received: "Records received", attemptMax: "up to attempt {n}",
      count: "{n} messages", countFiltered: "{n} messages (filtered)", nRecords: "{n} rec.",
      lg_ok: "all saved (succFlag 1)", lg_partial: "partly failed (some 0 or -1)", lg_failed: "all failed (-1)",
      lg_rejected: "message refused (code≠0)", lg_transport: "transport fault (timeout, drop, 5xx)", lg_aborted: "client left before its request was complete",
      noScenario: "No scenario loaded. Pick one above and press Run.",
      steps: "Steps", expectations: "Expectations", faults: "Active faults",
      st_running: "running", st_passed: "passed", st_failed: "failed", st_cancelled: "cancelled", st_loaded: "loaded",
      observed: "observed: ", seconds: "{s} s",
      hopTitle1: "Hop 1 saveExamRpotImgInfo", hopTitle2: "Hop 2 saveExamRpotImgIndx",
      side_server: "recorded by the receiver", side_client: "recorded by the sender (peer did not record it)", ms: "{n} ms", attemptN: "attempt {n}",
      envelopeProblems: "Envelope", answerMsg: "Answer: ", recordN: "record {n}", noAnswer: "no answer",
      reportPage: "Report page", imagePage: "Image page", dicom: "DICOM (WADO-RS)", dicomZip: "DICOM (zip)",
      requestJson: "Request (JSON)", responseJson: "Response (JSON)", masked: "Mask personal data",
      dataString: "data was sent as a JSON string (ERRATA #13); shown expanded",
      missing: "(missing)", loading: "loading…", step: "Step", problemsN: "{e} errors, {w} notes",
      transport: "transport fault: {t}", httpStatus: "HTTP {n}", noResponse: "(no response)",
      col_index: "hiImgIndx", col_inst: "Institution", col_day: "Exam date", col_type: "Type", col_status: "Status",
      col_reason: "Reason / fields", col_links: "Links", col_msgs: "Messages",
      examsPage: "{from}–{to} of {total}", noExams: "No exam yet.",
      q_sent: "Exams sent", q_indexed: "Indexed", q_progress: "In progress", q_failed: "Failed",
      q_onTime: "On-time share (within {hours} h · sandbox setting quality_on_time_hours)", q_exposure: "Price-cut exposure (yuan)", q_empty: "No data yet.",
      q_defsTitle: "Definitions",
      q_def_exam: ["Exam", "one hiImgIndx; institution = the record's fixmedinsCode (else the envelope's infCode); day = examDate."],
      q_def_sent: ["Sent", "carried by at least one hop-1 message (any attempt, any answer)."],
      q_def_indexed: ["Indexed", "the provincial module answered succFlag 1 or 0 for it (its index is stored)."],
      q_def_failed: ["Failed", "not indexed and the last word was a refusal or a fault: refused by the center (-1), hop-1 message refused whole, never reached the center, the center gave up forwarding, refused by the province (-1 or whole message). One reason per exam (the furthest stage reached) and the fields its answer names."],
      q_def_progress: ["In progress", "stored at the center, waiting for or being forwarded to the province."],
      q_def_ontime: ["On time (sandbox setting quality_on_time_hours = {hours})", "indexed at the province within {hours} hours of the report's publication (rpotPubDate, else the end of examDate). This limit is the sandbox's own setting quality_on_time_hours (24 by default, changeable in the configuration file), not a rule of the notice: the notice only asks that indexes be uploaded to the provincial index module by 31 December (「12月31日前在全省医保信息平台影像云索引共享模块上传医保影像云索引信息」) and sets no per-exam deadline. Arrival is on the hospital's clock: the infTime of the first hop-1 message carrying the exam plus the time the journal measured from it to the province's answer. On-time share = on time ÷ sent."],
      q_def_radiology: ["Radiology", "imgExamType 1 X-ray, 2 CT or 3 MRI (NHSA radiology price items); ultrasound, nuclear medicine and other are not counted."],
      q_def_exposure: ["Price-cut exposure", "{yuan} yuan × radiology exams sent and not indexed (failed or in progress) — the 5-yuan cut for institutions that cannot provide the digital image upload and storage service (川医保办发〔2025〕15号)."],
      toastStarted: "Started: {name}", toastReset: "Everything emptied: data, journal, faults", failedRequest: "Request failed: {msg}"
    }
  };

  var params = new URLSearchParams(location.search);
  var lang = params.get("lang") || safeGet("dashboard.lang") || "zh";
  if (!I18N[lang]) { lang = "zh"; }

  function safeGet(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }
  function safeSet(key, value) { try { localStorage.setItem(key, value); } catch (e) { /* private mode */ } }

  function t(key, vars) {
    var text = I18N[lang][key];
    if (text === undefined) { text = I18N.zh[key]; }
    if (text === undefined) { return key; }
    if (vars) {
      text = String(text).replace(/\{(\w+)\}/g, function (m, k) { return vars[k] === undefined ? m : vars[k]; });
    }
    return text;
  }

  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function $(id) { return document.getElementById(id); }

  var els = {
    list: $("list"), spacer: $("spacer"), rows: $("rows"), empty: $("empty"), count: $("count"),
    follow: $("follow"), hop: $("filter-hop"), outcome: $("filter-outcome"), detail: $("detail"),
    run: $("run-panel"), conn: $("conn"), select: $("scenario-select"), resetFirst: $("reset-first"),
    toast: $("toast")
  };

  // ---- server calls --------------------------------------------------------------------------------------
  // The control token (when the sandbox listens beyond loopback) comes in the page's fragment, #token=…,
  // which the browser never sends; every call carries it as X-Sandbox-Token.
  var TOKEN = (/[#&]token=([^&]+)/.exec(location.hash) || [])[1] || "";
  function api(path, options) {
    options = options || {};
    if (TOKEN) { options.headers = Object.assign({}, options.headers || {}, { "X-Sandbox-Token": decodeURIComponent(TOKEN) }); }
    return fetch(path, options).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok || body.code !== 0) { throw new Error(body.message || ("HTTP " + r.status)); }
        return body;
      });
    });
  }

  var toastTimer = 0;
  function toast(text, error) {
    els.toast.textContent = text;
    els.toast.className = "toast show" + (error ? " error" : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { els.toast.className = "toast"; }, 3500);
  }
  function failed(err) { toast(t("failedRequest", { msg: err && err.message ? err.message : String(err) }), true); }

  // ---- the message list: a virtual list of fixed-height rows ---------------------------------------------
  var ROW_H = 44, PAGE = 200, OVERSCAN = 8, CACHE_MAX = 8000;
  var list = { total: 0, cache: new Map(), maxSeq: 0, inflight: {}, epoch: 0, selected: null };
  var stickBottom = true, ignoreScroll = false, raf = 0;

  function filtered() { return !!(els.hop.value || els.outcome.value); }
  function filterQuery() {
    var q = "";
    if (els.hop.value) { q += "&hop=" + els.hop.value; }
    if (els.outcome.value) { q += "&outcome=" + els.outcome.value; }
    return q;
  }
  function matches(e) {
    return (!els.hop.value || String(e.hop) === els.hop.value) && (!els.outcome.value || e.outcome === els.outcome.value);
  }

  function schedule() { if (!raf) { raf = requestAnimationFrame(render); } }

  function resync() {
    var epoch = ++list.epoch;
    return api("api/exchanges?limit=0" + filterQuery()).then(function (body) {
      if (epoch !== list.epoch) { return; }
      list.cache.clear();
      list.inflight = {};
      list.total = body.data.total;
      list.maxSeq = body.data.lastSeq;
      if (els.follow.checked) { stickBottom = true; }
      schedule();
    }).catch(failed);
  }

  function ensure(first, last) {
    if (last < first) { return; }
    for (var p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) {
      var missing = false;
      for (var i = Math.max(first, p * PAGE); i <= Math.min(last, p * PAGE + PAGE - 1); i++) {
        if (!list.cache.has(i)) { missing = true; break; }
      }
      if (missing && !list.inflight[p]) { fetchPage(p); }
    }
  }

  function fetchPage(p) {
    var epoch = list.epoch;
    list.inflight[p] = true;
    api("api/exchanges?offset=" + (p * PAGE) + "&limit=" + PAGE + filterQuery()).then(function (body) {
      if (epoch !== list.epoch) { return; }
      delete list.inflight[p];
      body.data.items.forEach(function (e, k) { list.cache.set(p * PAGE + k, e); });
      schedule();
    }).catch(function (err) { delete list.inflight[p]; failed(err); });
  }

  function prune(first, last) {
    if (list.cache.size <= CACHE_MAX) { return; }
    list.cache.forEach(function (v, k) {
      if (k < first - 2 * PAGE || k > last + 2 * PAGE) { list.cache.delete(k); }
    });
  }

  function onEntries(batch) {
    var changed = false;
    batch.forEach(function (e) {
      if (!filtered()) {
        list.cache.set(e.seq - 1, e);
        list.total = Math.max(list.total, e.seq);
        changed = true;
      } else if (e.seq > list.maxSeq && matches(e)) {
        list.cache.set(list.total, e);
        list.total += 1;
        changed = true;
      }
      list.maxSeq = Math.max(list.maxSeq, e.seq);
    });
    if (changed) {
      if (els.follow.checked) { stickBottom = true; }
      schedule();
    }
  }

  // China time (UTC+8, no daylight saving) whatever the browser's or the host's zone; the title says so.
  function clock(epochSeconds) {
    var d = new Date(epochSeconds * 1000 + 8 * 3600 * 1000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + ":" + two(d.getUTCSeconds());
  }

  function chinaIso(epochSeconds) {
    var d = new Date(epochSeconds * 1000 + 8 * 3600 * 1000);
    return d.toISOString().replace("Z", "+08:00");
  }

  function flagsBar(e) {
    var n = e.n_ok + e.n_partial + e.n_failed;
    if (!n) { return ""; }
    function seg(cls, k) { return k ? '<i class="' + cls + '" style="width:' + (100 * k / n) + '%"></i>' : ""; }
    return '<span class="flags" title="succFlag 1: ' + e.n_ok + ' · 0: ' + e.n_partial + ' · -1: ' + e.n_failed + '">' +
      seg("f1", e.n_ok) + seg("f0", e.n_partial) + seg("fm", e.n_failed) + "</span>";
  }

  function outcomeText(e) {
    if (e.outcome === "ok") { return "✓ " + t("o_ok"); }
    if (e.outcome === "partial") { return "◐ ✓" + e.n_ok + " ◐" + e.n_partial + " ✕" + e.n_failed; }
    if (e.outcome === "failed") { return "✕ " + t("o_failed"); }
    if (e.outcome === "rejected") { return "⊘ code " + (e.code === null ? "?" : e.code); }
    if (e.outcome === "aborted") { return "⇥ " + t("o_aborted"); }
    return "⚠ " + (e.transport || t("o_transport"));
  }

  function rowHtml(i, e) {
    if (!e) { return '<div class="row"><div class="when">' + t("loading") + "</div></div>"; }
    var sel = list.selected === e.seq ? " selected" : "";
    var title = [e.msgid || "", e.step || "", e.fault ? "⚡ " + e.fault : ""].filter(Boolean).join(" · ");
    var second = '<span class="mono">' + esc(e.msgid || "") + "</span>" +
      "<span>" + t("nRecords", { n: e.records }) + "</span>" +
      (e.attempt && e.attempt > 1 ? "<span>" + t("attemptN", { n: e.attempt }) + "</span>" : "") +
      "<span>" + t("ms", { n: Math.round(e.duration_ms) }) + "</span>";
    return '<div class="row">' +
      '<div class="when"><span title="' + chinaIso(e.started) + '"><b>#' + e.seq + "</b> " + clock(e.started) + " +08:00</span>" +
      (e.step ? '<span title="' + esc(e.step) + '">' + esc(e.step) + "</span>" : "") + "</div>" +
      '<div class="msg hop' + e.hop + " o-" + e.outcome + sel + '" data-seq="' + e.seq + '" data-hop="' + e.hop +
      '" data-outcome="' + e.outcome + '" data-from="' + e.from_role + '" data-to="' + e.to_role + '" title="' + esc(title) + '">' +
      '<div class="l1"><b>' + esc(outcomeText(e)) + "</b>" + flagsBar(e) +
      (e.fault ? '<span class="tag fault">⚡ ' + esc(e.fault) + "</span>" : "") + "</div>" +
      '<div class="l2">' + second + "</div></div></div>";
  }

  function render() {
    raf = 0;
    els.spacer.style.height = (list.total * ROW_H) + "px";
    if (stickBottom) {
      ignoreScroll = true;
      els.list.scrollTop = els.list.scrollHeight;
      stickBottom = false;
    }
    var top = els.list.scrollTop, height = els.list.clientHeight || 600;
    var first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    var last = Math.min(list.total - 1, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    var html = [];
    for (var i = first; i <= last; i++) { html.push(rowHtml(i, list.cache.get(i))); }
    els.rows.style.transform = "translateY(" + (first * ROW_H) + "px)";
    els.rows.innerHTML = html.join("");
    els.empty.style.display = list.total ? "none" : "";
    els.count.textContent = t(filtered() ? "countFiltered" : "count", { n: list.total });
    ensure(first, last);
    prune(first, last);
  }

  els.list.addEventListener("scroll", function () {
    if (ignoreScroll) { ignoreScroll = false; } else {
      var atBottom = els.list.scrollTop + els.list.clientHeight >= els.list.scrollHeight - ROW_H;
      els.follow.checked = atBottom;
    }
    schedule();
  }, { passive: true });
  els.follow.addEventListener("change", function () { if (els.follow.checked) { stickBottom = true; schedule(); } });
  els.hop.addEventListener("change", resync);
  els.outcome.addEventListener("change", resync);
  els.rows.addEventListener("click", function (ev) {
    var card = ev.target.closest(".msg");
    if (card) { select(Number(card.getAttribute("data-seq"))); }
  });

  // ---- the lanes' heads: counters per role ---------------------------------------------------------------
  var lastState = null;

  function chip(value, cls, label) {
    var zero = value === 0 ? " zero" : "";
    return '<span class="chip ' + (cls || "") + zero + '">' + (label ? esc(label) + " " : "") + esc(value === null || value === undefined ? "—" : value) + "</span>";
  }
  function outcomeChips(o) {
    return ["ok", "partial", "failed", "rejected", "transport", "aborted"].map(function (k) {
      return '<span class="chip ' + k + (o[k] ? "" : " zero") + '" title="' + esc(t("o_" + k)) + '">' +
        { ok: "✓", partial: "◐", failed: "✕", rejected: "⊘", transport: "⚠", aborted: "⇥" }[k] + " " + o[k] + "</span>";
    }).join("");
  }
  function flagChips(f) {
    return chip(f["1"], "ok", "1:") + chip(f["0"], "partial", "0:") + chip(f["-1"], "failed", "-1:");
  }
  function stat(label, html) { return '<div class="stat"><span class="k">' + esc(label) + "</span>" + html + "</div>"; }

  function roleHead(role, info, body) {
    var el = $("role-" + role);
    var link = info.page && info.running ? '<a href="' + esc(info.page) + '" target="_blank" rel="noopener">' + t("open") + "</a>" : "";
    var note = !info.inProcess ? " · " + t("external") : (!info.running ? " · " + t("notRunning") : "");
    el.className = "role" + (info.inProcess && !info.running ? " down" : "");
    el.innerHTML = "<h2><span>" + esc(t("role_" + role)) + esc(note) + "</span>" + link + "</h2>" + body;
  }

  function ageText(seconds) {
    if (seconds < 120) { return t("age_s", { n: seconds }); }
    if (seconds < 7200) { return t("age_m", { n: Math.round(seconds / 60) }); }
    return t("age_h", { n: Math.round(seconds / 360) / 10 });
  }

  function renderRoles(s) {
    var c = s.counters;
    roleHead("hospital", s.roles.hospital,
      stat(t("sentMessages"), chip(c.hospital.messages, "big")) +
      stat(t("answers"), outcomeChips(c.hospital.outcomes)) +
      (c.hospital.retrying ? stat("", chip(t("retrying", { n: c.hospital.retrying }), "retry")) : ""));
    var center = c.center, outbox = center.outbox;
    roleHead("center", s.roles.center,
      stat(t("received"), flagChips(center.records)) +
      (outbox ? stat(t("outbox"), chip(center.depth, "big") + chip(t("pending", { n: outbox.pending }), "") +
        chip(t("sending", { n: outbox.sending }), "") + (outbox.held ? chip(t("held", { n: outbox.held }), "failed") : "") +
        (outbox.expired ? chip(t("expired", { n: outbox.expired }), "failed") : "") +
        (center.oldestAgeSeconds != null && center.depth ? chip(t("oldest", { n: ageText(center.oldestAgeSeconds) }), "retry") : "")) +
        stat(t("forwarded"), chip(outbox.done, "ok") + '<span class="k">' + esc(t("forwardFailed")) + "</span>" + chip(outbox.failed, "failed")) : "") +
      (center.retrying ? stat("", chip(t("retrying", { n: center.retrying }), "retry") +
        (center.maxAttempt ? chip(t("attemptMax", { n: center.maxAttempt }), "retry") : "")) : ""));
    roleHead("province", s.roles.province,
      stat(t("received"), flagChips(c.province.records)) +
      stat(t("indexes"), chip(c.province.indexes, "big ok")) +
      stat(t("answers"), outcomeChips(c.province.messages)));
  }

  function renderLegend() {
    $("legend").innerHTML = ["ok", "partial", "failed", "rejected", "transport", "aborted"].map(function (k) {
      var style = { ok: "var(--ok)", partial: "var(--partial)", failed: "var(--failed)", rejected: "var(--rejected)", transport: "var(--transport)", aborted: "var(--transport)" }[k];
      var bg = { ok: "var(--ok-bg)", partial: "var(--partial-bg)", failed: "var(--failed-bg)", rejected: "var(--rejected-bg)", transport: "var(--transport-bg)", aborted: "#fff" }[k];
      return '<span><i class="sw" style="border-color:' + style + ";background:" + bg + (k === "transport" || k === "aborted" ? ";border-style:dashed" : "") + '"></i>' + esc(t("lg_" + k)) + "</span>";
    }).join("");
  }

  // ---- the scenario run ----------------------------------------------------------------------------------
  function renderRun(s) {
    var run = s.run;
    var html = "";
    if (!run) {
      html = '<p class="hint">' + esc(t("noScenario")) + "</p>";
    } else {
      html = "<h3>" + esc(run.title[lang] || run.title.zh) + '<span class="state ' + run.state + '">' + esc(t("st_" + run.state)) + "</span></h3>" +
        '<details class="about"><summary>' + esc(t("about")) + "</summary>" + esc(run.description[lang] || run.description.zh) + "</details>" +
        "<h4>" + esc(t("steps")) + '</h4><ul class="steps">' + run.steps.map(function (st) {
          return '<li class="' + st.state + '">' + esc(lang === "en" && st.labelEn ? st.labelEn : st.label) +
            (st.seconds !== undefined && st.seconds !== null ? ' <span class="secs">' + esc(t("seconds", { s: st.seconds })) + "</span>" : "") +
            (st.error ? '<span class="err">' + esc(st.error) + "</span>" : "") + "</li>";
        }).join("") + "</ul>" +
        "<h4>" + esc(t("expectations")) + '</h4><ul class="expects">' + run.expectations.map(function (ex) {
          var cls = ex.ok === null ? "wait" : (ex.ok ? "ok" : "bad");
          return '<li class="' + cls + '">' + esc(lang === "en" && ex.textEn ? ex.textEn : ex.text) +
            (ex.observed !== null ? '<span class="obs">' + esc(t("observed")) + esc(ex.observed) + "</span>" : "") + "</li>";
        }).join("") + "</ul>";
    }
    if (s.faults && s.faults.length) {
      html += "<h4>" + esc(t("faults")) + '</h4><ul class="faults">' + s.faults.map(function (f) {
        return "<li>" + esc(f.name) + " — " + esc(f.description) + "</li>";
      }).join("") + "</ul>";
    }
    els.run.innerHTML = html;
  }

  // ---- one message ---------------------------------------------------------------------------------------
  var detailSeq = null, detailData = null, masked = true;

  function select(seq) {
    list.selected = seq;
    detailSeq = seq;
    schedule();
    els.detail.innerHTML = '<p class="hint">' + esc(t("loading")) + "</p>";
    return api("api/exchanges/" + seq + "?mask=" + (masked ? "1" : "0")).then(function (body) {
      if (detailSeq !== seq) { return; }
      detailData = body.data;
      renderDetail();
    }).catch(failed);
  }

  function jsonValue(v) {
    if (v === null || v === undefined) { return '<span class="z">null</span>'; }
    if (typeof v === "string") { return '<span class="s">' + esc(JSON.stringify(v)) + "</span>"; }
    if (typeof v === "number") { return '<span class="n">' + v + "</span>"; }
    if (typeof v === "boolean") { return '<span class="b">' + v + "</span>"; }
    return '<span class="z">' + esc(JSON.stringify(v)) + "</span>";
  }

  function problemsByField(problems) {
    var by = {};
    problems.forEach(function (p) {
      var key = p.field || "";
      (by[key] = by[key] || []).push(p);
    });
    return by;
  }

  function kvLines(obj, problems, skip) {
    var by = problemsByField(problems);
    var present = {};
    Object.keys(obj).forEach(function (rawKey) { present[rawKey.trim()] = true; });
    // Fields the table requires and the record lacks come first: that is what the trainer points at.
    var html = Object.keys(by).filter(function (key) { return key && !present[key]; }).map(function (key) {
      var ps = by[key];
      var level = ps.some(function (p) { return p.level === "error"; }) ? "error" : "warning";
      return '<div class="kv missing hl-' + level + '" data-field="' + esc(key) + '"><span class="k">' + esc(JSON.stringify(key)) +
        "</span>: <span class=\"z\">" + esc(t("missing")) + '</span><span class="note">' +
        esc(ps.map(function (p) { return "← " + p.message; }).join(" ")) + "</span></div>";
    }).join("");
    html += Object.keys(obj).map(function (rawKey) {
      var key = rawKey.trim();
      if (skip && skip(key)) { return ""; }
      var ps = by[key] || [];
      var level = ps.some(function (p) { return p.level === "error"; }) ? "error" : (ps.length ? "warning" : "");
      var note = ps.map(function (p) { return "← " + p.message; }).join(" ");
      return '<div class="kv' + (level ? " hl-" + level : "") + '" data-field="' + esc(key) + '">' +
        '<span class="k">' + esc(JSON.stringify(rawKey)) + "</span>: " + jsonValue(obj[rawKey]) +
        (note ? '<span class="note">' + esc(note) + "</span>" : "") + "</div>";
    }).join("");
    return '<div class="json">' + html + "</div>";
  }

  function problemList(problems) {
    if (!problems.length) { return ""; }
    return '<ul class="problems">' + problems.map(function (p) {
      return '<li class="' + p.level + '">' + (p.field ? '<span class="f">' + esc(p.field) + "</span> " + esc(p.fieldName || "") + "：" : "") +
        esc(p.message) + "</li>";
    }).join("") + "</ul>";
  }

  function linksHtml(links) {
    if (!links || !links.examRpotLinkUrl) { return ""; }
    return '<div class="links">' +
      '<a target="_blank" rel="noopener" href="' + esc(links.examRpotLinkUrl) + '">' + esc(t("reportPage")) + "</a>" +
      '<a target="_blank" rel="noopener" href="' + esc(links.imgInfoLinkUrl) + '">' + esc(t("imagePage")) + "</a>" +
      '<a target="_blank" rel="noopener" href="' + esc(links.imgDldLink) + '">' + esc(t("dicom")) + "</a>" +
      (links.imgDldZip ? '<a href="' + esc(links.imgDldZip) + '">' + esc(t("dicomZip")) + "</a>" : "") + "</div>";
  }

  function flagClass(flag) { return flag === "1" ? "f1" : flag === "0" ? "f0" : flag === "-1" ? "fm" : "fn"; }

  function recordBody(d, rec) {
    var data = dataOf(d.request);
    var obj = data && data[rec.position - 1];
    return (rec.message ? '<div class="answer">' + esc(t("answerMsg")) + esc(rec.message) + "</div>" : "") +
      linksHtml(rec.links) + problemList(rec.problems) +
      (obj && typeof obj === "object" ? kvLines(obj, rec.problems) : '<div class="json">' + jsonValue(obj) + "</div>");
  }

  function dataOf(request) {
    if (!request || typeof request !== "object") { return null; }
    var key = Object.keys(request).filter(function (k) { return k.trim() === "data"; })[0];
    var data = key === undefined ? null : request[key];
    if (data && !Array.isArray(data) && typeof data === "object") { return [data]; }
    return Array.isArray(data) ? data : null;
  }

  function renderDetail() {
    var d = detailData, e = d.entry;
    var roles = t("role_" + e.from_role) + " → " + t("role_" + e.to_role);
    var status = e.outcome === "transport" ? t("transport", { t: e.transport }) : (e.status ? t("httpStatus", { n: e.status }) : "");
    var html = "<h3>#" + e.seq + " " + esc(t("hopTitle" + e.hop)) + "</h3>" +
      '<div class="meta"><span>' + esc(roles) + '</span><span class="mono">' + esc(e.msgid || "") + "</span><span>" + esc(status) +
      "</span><span>" + esc(t("ms", { n: Math.round(e.duration_ms) })) + "</span><span>" + esc(t("side_" + e.side)) + "</span>" +
      (e.attempt ? "<span>" + esc(t("attemptN", { n: e.attempt })) + "</span>" : "") +
      (e.step ? "<span>" + esc(t("step")) + " " + esc(e.step) + "</span>" : "") +
      (e.fault ? '<span class="tag fault">⚡ ' + esc(e.fault) + "</span>" : "") +
      '<label class="check"><input type="checkbox" id="mask"' + (masked ? " checked" : "") + "> " + esc(t("masked")) + "</label></div>" +
      '<div class="answer o-' + e.outcome + '">' + esc(outcomeText(e)) + (d.answerMessage ? " — " + esc(d.answerMessage) : "") + "</div>";
    var envProblems = d.envelopeProblems || [];
    if (envProblems.length || (d.request && typeof d.request === "object")) {
      html += '<details class="rec' + (envProblems.some(function (p) { return p.level === "error"; }) ? " failed" : "") + '"' +
        (envProblems.length ? " open" : "") + '><summary><b>' + esc(t("envelopeProblems")) + "</b>" +
        (envProblems.length ? "<span>" + esc(t("problemsN", { e: count(envProblems, "error"), w: count(envProblems, "warning") })) + "</span>" : "") +
        '</summary><div class="body">' + problemList(envProblems) +
        (d.request && typeof d.request === "object" ? kvLines(d.request, envProblems, function (k) { return k === "data"; }) : "") +
        "</div></details>";
    }
    if (d.dataWasString) { html += '<p class="hint">' + esc(t("dataString")) + "</p>"; }
    d.records.forEach(function (rec) {
      var bad = rec.succFlag === "-1" ? " failed" : (rec.succFlag === "0" ? " partial" : "");
      var open = rec.succFlag === "-1" || rec.succFlag === "0" || count(rec.problems, "error") > 0;
      html += '<details class="rec' + bad + '" data-pos="' + rec.position + '"' + (open ? " open" : "") + "><summary>" +
        "<b>" + esc(t("recordN", { n: rec.position })) + '</b><span class="flag ' + flagClass(rec.succFlag) + '">' +
        esc(rec.succFlag === null ? t("noAnswer") : rec.succFlag) + '</span><span class="mono">' + esc(rec.hiImgIndx || "") + "</span>" +
        (rec.problems.length ? "<span>" + esc(t("problemsN", { e: count(rec.problems, "error"), w: count(rec.problems, "warning") })) + "</span>" : "") +
        '</summary><div class="body">' + (open ? recordBody(d, rec) : "") + "</div></details>";
    });
    html += '<details class="raw"><summary>' + esc(t("requestJson")) + '</summary><pre class="json">' +
      esc(typeof d.request === "string" ? d.request : JSON.stringify(d.request, null, 2)) + "</pre></details>" +
      '<details class="raw"><summary>' + esc(t("responseJson")) + '</summary><pre class="json">' +
      esc(d.response === null ? t("noResponse") : (typeof d.response === "string" ? d.response : JSON.stringify(d.response, null, 2))) + "</pre></details>";
    els.detail.innerHTML = html;
    Array.prototype.forEach.call(els.detail.querySelectorAll("details.rec[data-pos]"), function (node) {
      node.addEventListener("toggle", function () {
        var body = node.querySelector(".body");
        if (node.open && !body.innerHTML) {
          var rec = d.records[Number(node.getAttribute("data-pos")) - 1];
          body.innerHTML = recordBody(d, rec);
        }
      });
    });
    $("mask").addEventListener("change", function (ev) { masked = ev.target.checked; select(detailSeq); });
  }

  function count(problems, level) { return problems.filter(function (p) { return p.level === level; }).length; }

  // ---- scenarios -----------------------------------------------------------------------------------------
  var scenarioList = [];
  var picked = false;  // the trainer chose a scenario: stop showing the one that runs
  els.select.addEventListener("change", function () { picked = true; });
  function loadScenarios() {
    return api("api/scenarios").then(function (body) {
      scenarioList = body.data.filter(function (s) { return s.name; });
      renderScenarioOptions();
    }).catch(failed);
  }
  function renderScenarioOptions() {
    var current = els.select.value;
    els.select.innerHTML = scenarioList.map(function (s) {
      return '<option value="' + esc(s.name) + '">' + esc(s.title[lang] || s.title.zh) + "（" + esc(s.name) + "）</option>";
    }).join("");
    if (current) { els.select.value = current; }
    if (!picked && lastState && lastState.run) { els.select.value = lastState.run.name; }
  }
  $("run-scenario").addEventListener("click", function () {
    var name = els.select.value;
    if (!name) { return; }
    api("api/scenario", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: name, reset: els.resetFirst.checked }) })
      .then(function () { toast(t("toastStarted", { name: name })); }).catch(failed);
  });
  $("reset").addEventListener("click", function () {
    api("api/reset", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }).then(function () { toast(t("toastReset")); }).catch(failed);
  });

  // ---- exams ---------------------------------------------------------------------------------------------
  var examsOffset = 0, EXAMS_PAGE = 50, lastExamsAt = 0;
  function loadExams() {
    lastExamsAt = Date.now();
    var status = $("exam-status").value;
    return api("api/exams?offset=" + examsOffset + "&limit=" + EXAMS_PAGE + (status ? "&status=" + status : ""))
      .then(function (body) { renderExams(body.data); }).catch(failed);
  }
  function statusText(status) { return t("s_" + status); }
  function renderExams(d) {
    var head = "<thead><tr><th>" + [t("col_index"), t("col_inst"), t("col_day"), t("col_type"), t("col_status"),
      t("col_reason"), t("col_links"), t("col_msgs")].map(esc).join("</th><th>") + "</th></tr></thead>";
    var rows = d.items.map(function (e) {
      var reason = e.reason ? esc(lang === "en" && e.reasonEn ? e.reasonEn : e.reason) + (e.fields.length ? '<div class="small mono">' + esc(e.fields.join(" ")) + "</div>" : "") +
        (e.detail ? '<div class="small">' + esc(e.detail) + "</div>" : "") : "";
      var msgs = e.seqs.map(function (s) { return '<a href="#" data-seq="' + s + '">#' + s + "</a>"; }).join(" ");
      return '<tr data-status="' + e.status + '"><td class="mono">' + esc(e.shown) + "</td><td>" + esc(e.institutionName || e.institution) +
        '<div class="small mono">' + esc(e.institution) + "</div></td><td>" + esc(e.day) + "</td><td>" + esc(e.imgExamTypeName || e.imgExamType) +
        '</td><td><span class="status ' + e.status + '">' + esc(statusText(e.status)) + "</span></td><td>" + reason + "</td><td>" +
        linksHtml(e.links) + "</td><td>" + msgs + "</td></tr>";
    }).join("");
    $("exams-table").innerHTML = head + "<tbody>" + (rows || '<tr><td colspan="8" class="small">' + esc(t("noExams")) + "</td></tr>") + "</tbody>";
    var to = Math.min(d.total, examsOffset + d.items.length);
    $("exams-page").textContent = t("examsPage", { from: d.total ? examsOffset + 1 : 0, to: to, total: d.total });
    $("exams-prev").disabled = examsOffset <= 0;
    $("exams-next").disabled = to >= d.total;
  }
  $("exam-status").addEventListener("change", function () { examsOffset = 0; loadExams(); });
  $("exams-prev").addEventListener("click", function () { examsOffset = Math.max(0, examsOffset - EXAMS_PAGE); loadExams(); });
  $("exams-next").addEventListener("click", function () { examsOffset += EXAMS_PAGE; loadExams(); });
  $("exams-table").addEventListener("click", function (ev) {
    var a = ev.target.closest("a[data-seq]");
    if (!a) { return; }
    ev.preventDefault();
    showTab("chain");
    select(Number(a.getAttribute("data-seq")));
  });

  // ---- the upload-quality report -------------------------------------------------------------------------
  var lastQualityAt = 0, qualityData = null;
  function loadQuality() {
    lastQualityAt = Date.now();
    return api("api/quality").then(function (body) { qualityData = body.data; renderQuality(); }).catch(failed);
  }
  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
  function cell(key, row) {
    var v = row[key];
    if (key === "failedByReason") { return v.map(function (r) { return esc(lang === "en" && r.reasonEn ? r.reasonEn : r.reason) + " ×" + r.count; }).join("<br>"); }
    if (key === "topFields") {
      return v.map(function (f) { return '<span class="mono">' + esc(f.field) + "</span> " + esc(f.name) + " ×" + f.count; }).join("<br>");
    }
    if (key === "onTimeShare") { return pct(v); }
    return esc(v === null || v === undefined ? "—" : v);
  }
  var NUMERIC = { sent: 1, indexed: 1, inProgress: 1, failed: 1, onTime: 1, onTimeShare: 1, medianDelayHours: 1, radiology: 1, radiologyNotIndexed: 1, exposureYuan: 1 };
  function renderQuality() {
    var q = qualityData;
    if (!q) { return; }
    var total = q.total;
    function card(label, value, warn) { return '<div class="card' + (warn ? " warn" : "") + '"><div class="v">' + esc(value) + '</div><div class="l">' + esc(label) + "</div></div>"; }
    $("quality-cards").innerHTML = card(t("q_sent"), total.sent) + card(t("q_indexed"), total.indexed) +
      card(t("q_progress"), total.inProgress) + card(t("q_failed"), total.failed, total.failed > 0) +
      card(t("q_onTime").split("{hours}").join(q.onTimeHours), pct(total.onTimeShare)) + card(t("q_exposure"), "¥" + total.exposureYuan, total.exposureYuan > 0);
    var cols = q.columns;
    var head = "<thead><tr>" + cols.map(function (c) { return '<th class="' + (NUMERIC[c.key] ? "num" : "") + '">' + esc(c[lang] || c.zh) + "</th>"; }).join("") + "</tr></thead>";
    function tr(row, cls) {
      return '<tr class="' + cls + '" data-inst="' + esc(row.institution) + '" data-day="' + esc(row.day) + '">' + cols.map(function (c) {
        return '<td data-key="' + c.key + '" class="' + (NUMERIC[c.key] ? "num" : "") + (c.key === "exposureYuan" && row.exposureYuan ? " money" : "") + '">' + cell(c.key, row) + "</td>";
      }).join("") + "</tr>";
    }
    var body = q.rows.map(function (r) { return tr(r, "day"); }).join("") +
      q.institutions.map(function (r) { return tr(r, "subtotal"); }).join("") + (q.rows.length ? tr(total, "total") : "");
    $("quality-table").innerHTML = head + "<tbody>" + (body || '<tr><td colspan="' + cols.length + '" class="small">' + esc(t("q_empty")) + "</td></tr>") + "</tbody>";
    var defs = ["q_def_exam", "q_def_sent", "q_def_indexed", "q_def_failed", "q_def_progress", "q_def_ontime", "q_def_radiology", "q_def_exposure"];
    $("quality-defs").innerHTML = "<b>" + esc(t("q_defsTitle")) + "</b><dl>" + defs.map(function (k) {
      var pair = I18N[lang][k];
      var text = pair[1].split("{hours}").join(q.onTimeHours).replace("{yuan}", q.priceCutYuan);
      return "<dt>" + esc(pair[0].split("{hours}").join(q.onTimeHours)) + "</dt><dd>" + esc(text) + "</dd>";
    }).join("") + "</dl>";
  }

  // ---- tabs, language ------------------------------------------------------------------------------------
  var activeTab = "chain";
  function showTab(name) {
    activeTab = name;
    Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (b) {
      b.classList.toggle("active", b.getAttribute("data-tab") === name);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (s) {
      s.classList.toggle("active", s.id === "tab-" + name);
    });
    if (name === "exams") { loadExams(); }
    if (name === "quality") { loadQuality(); }
    if (name === "chain") { schedule(); }
  }
  Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (b) {
    b.addEventListener("click", function () { showTab(b.getAttribute("data-tab")); });
  });

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (node) {
      node.textContent = t(node.getAttribute("data-i18n"));
    });
    Array.prototype.forEach.call(document.querySelectorAll(".lang button"), function (b) {
      b.classList.toggle("active", b.getAttribute("data-lang") === lang);
    });
    renderLegend();
    renderScenarioOptions();
    if (lastState) { renderRoles(lastState); renderRun(lastState); }
    if (detailData) { renderDetail(); }
    if (qualityData) { renderQuality(); }
    if (activeTab === "exams") { loadExams(); }
    setConn(els.conn.getAttribute("data-state"));
    schedule();
  }
  Array.prototype.forEach.call(document.querySelectorAll(".lang button"), function (b) {
    b.addEventListener("click", function () { lang = b.getAttribute("data-lang"); safeSet("dashboard.lang", lang); applyLang(); });
  });

  // ---- live updates (server-sent events) -----------------------------------------------------------------
  function setConn(state) {
    els.conn.setAttribute("data-state", state);
    els.conn.textContent = t("conn_" + state);
  }

  var resyncTimer = 0;
  function onState(s) {
    if (s.run && !picked && els.select.value !== s.run.name) { els.select.value = s.run.name; }
    lastState = s;
    renderRoles(s);
    renderRun(s);
    // The unfiltered list holds exactly seq 1..total: a difference means entries were missed or reset.
    if (!filtered() && s.total !== list.total) {
      clearTimeout(resyncTimer);
      resyncTimer = setTimeout(function () {
        if (lastState && lastState.total !== list.total) { resync(); }
      }, 600);
    }
    var now = Date.now();
    if (activeTab === "quality" && now - lastQualityAt > 1500) { loadQuality(); }
    if (activeTab === "exams" && now - lastExamsAt > 1500) { loadExams(); }
  }

  var source = null;
  function connect() {
    setConn("connecting");
    source = new EventSource("api/events");
    var wasDown = false;
    source.onopen = function () {
      setConn("live");
      if (wasDown) { resync(); }
    };
    source.onerror = function () { wasDown = true; setConn("down"); };
    source.addEventListener("state", function (ev) { onState(JSON.parse(ev.data)); });
    source.addEventListener("entries", function (ev) { onEntries(JSON.parse(ev.data)); });
    source.addEventListener("reset", function () {
      list.selected = null; detailSeq = null; detailData = null;
      els.detail.innerHTML = '<p class="hint">' + esc(t("pickHint")) + "</p>";
      resync();
    });
    source.addEventListener("resync", function () { resync(); });
  }
  window.addEventListener("beforeunload", function () { if (source) { source.close(); } });
  window.addEventListener("resize", schedule);

  // Exposed for tests and for a trainer's console: the list's model and a way to select a message.
  window.dashboard = { list: list, select: select, showTab: showTab, state: function () { return lastState; } };

  applyLang();
  connect();
  loadScenarios();
  resync();
})();
