// sluice live UI: polls the JSON API once a second and draws the progress
// reports with uPlot. Plain JavaScript, no build step. Every field of a
// progress report is optional here: idle queries, queries without the
// "sluice" key and partial groups must all render.
(function () {
  'use strict';

  // ?poll=MS changes the poll interval (tests use a short one); at least 100 ms.
  var POLL_MS = Math.max(100, Number(new URLSearchParams(location.search).get('poll')) || 1000);
  // The group panel asks the group coordinator (through the query's
  // process) less often than the progress is polled.
  var GROUP_MS = Math.min(5000, 5 * POLL_MS);
  var KEEP = 300;          // reports kept in the browser (the server keeps 100)
  var MAX_PART_SERIES = 12; // partitions charted, the most lagging first

  var STATUS_COLOURS = {
    OK: '#1f9d55', WARN: '#e0a000', STALL: '#d63b3b', STOP: '#d63b3b',
    ERR: '#d63b3b', REWIND: '#8e44ad'
  };
  var UNKNOWN_COLOUR = '#9aa3af';
  var PART_PALETTE = ['#2563eb', '#0891b2', '#4f46e5', '#475569', '#0d9488', '#1e3a8a',
    '#38bdf8', '#6366f1', '#155e75', '#94a3b8', '#3b82f6', '#115e59'];

  // Read by the headless-browser test: how much was drawn.
  var rendered = window.__sluiceRendered = { charts: 0, points: 0, batches: 0, partitions: 0, query: null, polls: 0,
    arrivalPoints: 0, limitMarks: 0, batchRows: 0, findings: 0, stateRows: 0,
    groupRows: 0, groupMembers: 0, groupMine: 0 };
  var errors = window.__sluiceErrors = [];
  window.addEventListener('error', function (e) {
    var m = String(e.message || e);
    // A benign notice of the browser about layout, not an error of the page.
    if (m.indexOf('ResizeObserver loop') < 0) errors.push(m);
  });
  window.addEventListener('unhandledrejection', function (e) { errors.push('unhandled: ' + String(e.reason)); });

  var state = {
    server: null,      // GET /api/v1/server
    queries: [],
    selected: null,    // query id
    history: [],       // progress reports, oldest first
    arrival: [],       // {t, rate}: latest-offset samples (live state), oldest first
    live: null,        // GET /api/v1/queries/{id}/live, when the query has it
    keys: {},          // key -> true, for merging
    charts: {},        // chart id -> {u, sig}
    limitsFor: null,   // query id the form was prepared for
    groupAt: 0,        // when the group was last asked for (ms)
    groupFor: null     // query id of the group panel's contents
  };

  // ---- small helpers -------------------------------------------------------

  function $(id) { return document.getElementById(id); }
  function get(o, path) {
    var parts = path.split('.');
    for (var i = 0; i < parts.length; i++) {
      if (o === null || o === undefined || typeof o !== 'object') return undefined;
      o = o[parts[i]];
    }
    return o;
  }
  function num(v) { return (typeof v === 'number' && isFinite(v)) ? v : null; }
  function setText(id, s) { var el = $(id); if (el) el.textContent = s; }
  function fmtCount(v) {
    v = num(v); if (v === null) return '—';
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
    if (a >= 100 || v === Math.round(v)) return String(Math.round(v));
    return v.toFixed(a >= 10 ? 1 : 2);
  }
  function group(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function fmtBytes(v) {
    v = num(v); if (v === null) return '—';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(Math.abs(v) >= 100 ? 0 : 1)) + ' ' + units[i];
  }
  function fmtSeconds(s) {
    s = num(s); if (s === null) return '—';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.round(s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.round((s % 3600) / 60) + 'm';
  }
  function fmtMs(ms) { ms = num(ms); return ms === null ? '—' : fmtSeconds(ms / 1000); }
  // fmtTime renders seconds since the epoch in UTC, ISO 8601.
  function fmtTime(t) { t = num(t); return t === null ? '—' : new Date(t * 1000).toISOString(); }
  // clockUTC renders seconds since the epoch as the UTC time of day,
  // HH:MM:SS (the time axis; the date is in the legend).
  function clockUTC(t) { return t === null || t === undefined ? '' : new Date(t * 1000).toISOString().slice(11, 19); }
  // clockTicks labels the time axis in UTC, with tenths of a second when
  // whole seconds would repeat a label.
  function clockTicks(u, splits) {
    var whole = splits.map(clockUTC);
    for (var i = 1; i < whole.length; i++) {
      if (whole[i] && whole[i] === whole[i - 1]) {
        return splits.map(function (t) { return t === null || t === undefined ? '' : new Date(t * 1000).toISOString().slice(11, 21); });
      }
    }
    return whole;
  }
  // positive keeps a value a log scale can draw.
  function positive(v) { v = num(v); return v !== null && v > 0 ? v : null; }
  function statusClass(s) {
    return 'badge st-' + (typeof s === 'string' && STATUS_COLOURS[s] ? s.toLowerCase() : 'none');
  }
  function getJSON(url) {
    return fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function timeOf(p) {
    var t = typeof p.timestamp === 'string' ? Date.parse(p.timestamp) : NaN;
    return isFinite(t) ? t / 1000 : null;
  }

  // ---- lag, with a fallback to Spark's offsets when there is no sluice key --

  // partitionsOf returns [{key, topic, partition, behind, seconds, status,
  // reason, method}] for one report.
  function partitionsOf(p) {
    var out = [];
    var parts = get(p, 'sluice.lag.partitions');
    if (Array.isArray(parts)) {
      parts.forEach(function (x) {
        if (!x || typeof x !== 'object') return;
        var topic = typeof x.topic === 'string' ? x.topic : '?';
        out.push({
          key: topic + '/' + x.partition, topic: topic, partition: x.partition,
          behind: num(x.offsetsBehind), seconds: num(x.lagSeconds),
          status: typeof x.status === 'string' ? x.status : null,
          reason: typeof x.reason === 'string' ? x.reason : '',
          method: typeof x.lagMethod === 'string' ? x.lagMethod : ''
        });
      });
      return out;
    }
    // Spark's Kafka offsets: {"topic": {"0": 123, ...}}; lag = latest − end.
    (Array.isArray(p.sources) ? p.sources : []).forEach(function (s) {
      var end = s && s.endOffset, latest = s && s.latestOffset;
      if (!end || !latest || typeof end !== 'object' || typeof latest !== 'object') return;
      Object.keys(latest).forEach(function (topic) {
        var lt = latest[topic], et = end[topic];
        if (!lt || typeof lt !== 'object') return;
        Object.keys(lt).forEach(function (part) {
          var l = num(lt[part]), e = et && typeof et === 'object' ? num(et[part]) : null;
          if (l === null || e === null) return;
          out.push({ key: topic + '/' + part, topic: topic, partition: Number(part),
            behind: Math.max(0, l - e), seconds: null, status: null, reason: '', method: '' });
        });
      });
    });
    return out;
  }

  // ---- history -------------------------------------------------------------

  function keyOf(p) { return [p.runId, p.batchId, p.timestamp].join('|'); }
  function resetHistory() { state.history = []; state.keys = {}; state.arrival = []; state.live = null; }

  // mergeArrival adds the live state's arrival samples to the series.
  function mergeArrival(samples) {
    if (!Array.isArray(samples)) return;
    var have = {};
    state.arrival.forEach(function (a) { have[a.t] = true; });
    samples.forEach(function (a) {
      if (!a || typeof a.timestamp !== 'string') return;
      var t = Date.parse(a.timestamp);
      if (!isFinite(t) || have[t / 1000]) return;
      have[t / 1000] = true;
      state.arrival.push({ t: t / 1000, rate: num(a.rowsPerSecond) });
    });
    state.arrival.sort(function (a, b) { return a.t - b.t; });
    while (state.arrival.length > 2 * KEEP) state.arrival.shift();
  }
  function merge(reports) {
    if (!Array.isArray(reports)) return;
    var added = false;
    reports.forEach(function (p) {
      if (!p || typeof p !== 'object') return;
      var k = keyOf(p);
      if (state.keys[k]) return;
      state.keys[k] = true; state.history.push(p); added = true;
    });
    if (!added) return;
    state.history.sort(function (a, b) { return (timeOf(a) || 0) - (timeOf(b) || 0); });
    while (state.history.length > KEEP) delete state.keys[keyOf(state.history.shift())];
  }

  // ---- charts --------------------------------------------------------------

  function axisValues(fmt) { return function (u, splits) { return splits.map(fmt); }; }
  function baseAxes(fmt) {
    var grid = { stroke: '#eef1f5', width: 1 }, ticks = { stroke: '#e2e6ec', width: 1 };
    return [
      { stroke: '#687385', grid: grid, ticks: ticks, values: clockTicks },
      { stroke: '#687385', grid: grid, ticks: ticks, size: axisSize, values: axisValues(fmt) }
    ];
  }
  // axisSize fits the y axis to its longest label.
  function axisSize(u, values) {
    var longest = 0;
    (values || []).forEach(function (v) { if (v && v.length > longest) longest = v.length; });
    return Math.max(50, Math.ceil(longest * 7.2) + 20);
  }
  function line(label, colour, extra) {
    var s = { label: label, stroke: colour, width: 2, spanGaps: true, points: { show: true, size: 4 } };
    for (var k in extra || {}) s[k] = extra[k];
    return s;
  }

  // statusDots draws, for every partition series, a dot per report in the
  // colour of the partition's status in that report.
  function statusDots(u) {
    var st = u.sluiceStatuses;
    if (!st) return;
    var ctx = u.ctx, xs = u.data[0], r = 3.5 * (window.devicePixelRatio || 1);
    ctx.save();
    for (var si = 1; si < u.series.length; si++) {
      if (!u.series[si].show) continue;
      var ys = u.data[si], ss = st[si - 1] || [];
      for (var i = 0; i < xs.length; i++) {
        if (ys[i] === null || ys[i] === undefined || !ss[i]) continue;
        var cx = u.valToPos(xs[i], 'x', true), cy = u.valToPos(ys[i], 'y', true);
        ctx.beginPath();
        ctx.fillStyle = STATUS_COLOURS[ss[i]] || UNKNOWN_COLOUR;
        ctx.arc(cx, cy, r, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();
  }

  // limitMarks_ draws a red triangle above the admitted rate of every batch
  // the read limit capped.
  function limitMarks_(u) {
    var marks = u.sluiceMarks;
    if (!marks) return;
    var ctx = u.ctx, xs = u.data[0], adm = u.data[2], d = window.devicePixelRatio || 1;
    ctx.save();
    ctx.fillStyle = '#d63b3b';
    for (var i = 0; i < xs.length; i++) {
      if (!marks[i]) continue;
      var cx = u.valToPos(xs[i], 'x', true);
      var cy = adm[i] !== null && adm[i] !== undefined ? u.valToPos(adm[i], 'y', true) - 7 * d : u.bbox.top + 8 * d;
      var r = 5 * d;
      ctx.beginPath();
      ctx.moveTo(cx - r, cy - r); ctx.lineTo(cx + r, cy - r); ctx.lineTo(cx, cy + r * 0.6);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  }

  // latestLegend makes the legend show the newest values when the cursor
  // is not over the chart.
  function latestLegend(u) {
    var n = u.data && u.data[0] ? u.data[0].length : 0;
    var idx = u.legend.idx;
    if (n > 0 && (idx === null || idx === undefined || idx >= n)) u.setLegend({ idx: n - 1 }, false);
  }

  // referenceLine draws a horizontal dashed line at y = value.
  function referenceLine(value, colour) {
    return function (u) {
      var y = u.valToPos(value, 'y', true);
      if (!isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
      var ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = colour; ctx.lineWidth = 1 * (window.devicePixelRatio || 1);
      ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
      ctx.restore();
    };
  }

  function chartWidth(el) { return Math.max(280, el.clientWidth || 500); }

  // draw creates or updates chart id with series and data; a change in the
  // series labels rebuilds it.
  function draw(id, spec) {
    var el = $(id);
    if (!el || typeof window.uPlot !== 'function') return 0;
    var sig = spec.series.map(function (s) { return s.label; }).join('\u0001') + (spec.yLog ? '\u0001log' : '');
    var c = state.charts[id];
    if (!c || c.sig !== sig) {
      if (c) { if (c.ro) c.ro.disconnect(); c.u.destroy(); }
      el.textContent = '';
      spec.series.forEach(function (s) {
        if (!s.value) s.value = function (u, v) { return v === null || v === undefined ? '—' : spec.fmt(v); };
      });
      var opts = {
        width: chartWidth(el), height: 210,
        scales: { x: { time: true }, y: spec.yLog ? { distr: 3, log: 10 } : (spec.yRange ? { range: spec.yRange } : {}) },
        axes: baseAxes(spec.fmt),
        tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'); },
        series: [{ label: 'time (UTC)', value: function (u, v) { return v === null || v === undefined ? '—' : fmtTime(v); } }].concat(spec.series),
        legend: { live: true },
        cursor: { points: { size: 6 } },
        hooks: { draw: spec.hooks || [], setLegend: [latestLegend] }
      };
      c = state.charts[id] = { u: new window.uPlot(opts, spec.data, el), sig: sig };
      if (window.ResizeObserver) {
        var u = c.u;
        // Resize on the next frame, not inside the observer callback, so
        // that the new size does not re-enter the observer in one frame.
        c.ro = new ResizeObserver(function () {
          window.requestAnimationFrame(function () {
            var w = chartWidth(el);
            if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: 210 });
          });
        });
        c.ro.observe(el);
      }
    }
    c.u.sluiceStatuses = spec.statuses || null;
    c.u.sluiceMarks = spec.marks || null;
    c.u.setData(spec.data);
    var points = 0;
    for (var s = 1; s < spec.data.length; s++) {
      spec.data[s].forEach(function (v) { if (v !== null && v !== undefined) points++; });
    }
    el.dataset.empty = spec.data[0].length ? 'no data for this chart in these reports' : 'waiting for the first batch…';
    el.classList.toggle('waiting', points === 0);
    return points;
  }

  function renderCharts(hist) {
    var xs = [], inR = [], procR = [], dur = [], trig = [], sched = [], busy = [], vsTrig = [], ckpt = [];
    var partKeys = {}, perReport = [];
    hist.forEach(function (p) {
      var t = timeOf(p);
      if (t === null) return;
      xs.push(t);
      inR.push(num(p.inputRowsPerSecond));
      procR.push(num(p.processedRowsPerSecond));
      dur.push(num(p.batchDuration));
      var ti = num(get(p, 'sluice.timing.triggerIntervalMs'));
      trig.push(ti !== null && ti > 0 ? ti : null);
      sched.push(num(get(p, 'sluice.timing.schedulingDelayMs')));
      busy.push(num(get(p, 'sluice.timing.busyRatio')));
      vsTrig.push(num(get(p, 'sluice.timing.batchDurationVsTrigger')));
      ckpt.push(num(get(p, 'sluice.checkpoint.bytes')));
      var parts = {};
      partitionsOf(p).forEach(function (x) { parts[x.key] = x; partKeys[x.key] = x; });
      perReport.push(parts);
    });

    var total = 0, drawn = 0;
    function count(n) { total += n; if (n > 0) drawn++; }

    // Rates on one log scale, so that a spike ten times the admitted rate
    // and the capacity far above both all show: arrival from the live
    // state's samples (between batches too), the other three per batch.
    var byT = {};
    function slot(t) {
      if (!byT[t]) byT[t] = { arr: null, adm: null, proc: null, cap: null, bound: false };
      return byT[t];
    }
    hist.forEach(function (p) {
      var t = timeOf(p);
      if (t === null) return;
      var sl = slot(t);
      sl.adm = positive(p.inputRowsPerSecond);
      sl.proc = positive(p.processedRowsPerSecond);
      sl.cap = positive(get(p, 'sluice.lag.capacityRowsPerSecond'));
      sl.bound = get(p, 'sluice.admission.limitBound') === true;
    });
    var first = xs.length ? xs[0] : null;
    state.arrival.forEach(function (a) {
      if (first !== null && a.t < first - 120) return; // older than the reports shown
      slot(a.t).arr = positive(a.rate);
    });
    var rx = Object.keys(byT).map(Number).sort(function (a, b) { return a - b; });
    var arr = [], adm = [], proc = [], cap = [], marks = [];
    var arrivalPoints = 0, limitMarks = 0;
    rx.forEach(function (t) {
      var sl = byT[t];
      arr.push(sl.arr); adm.push(sl.adm); proc.push(sl.proc); cap.push(sl.cap); marks.push(sl.bound);
      if (sl.arr !== null) arrivalPoints++;
      if (sl.bound) limitMarks++;
    });
    var anyRate = arr.concat(adm, proc, cap).some(function (v) { return v !== null; });
    count(draw('chart-rates', {
      fmt: fmtCount, yLog: anyRate,
      series: [line('arrival rows/s', '#9333ea', { width: 1.5, points: { show: false } }), line('admitted rows/s', '#2563eb'),
        line('processed rows/s', '#1f9d55'), line('capacity rows/s', '#475569', { dash: [4, 3], width: 1.5, points: { show: false } })],
      data: [rx, arr, adm, proc, cap],
      marks: marks,
      hooks: [limitMarks_]
    }));
    rendered.arrivalPoints = arrivalPoints;
    rendered.limitMarks = limitMarks;

    var hasTrig = trig.some(function (v) { return v !== null; });
    var durSeries = [line('batch duration ms', '#4f46e5', { fill: 'rgba(79,70,229,0.08)' })];
    var durData = [xs, dur];
    if (hasTrig) {
      durSeries.push(line('trigger interval ms', '#d63b3b', { dash: [6, 4], width: 1.5, points: { show: false } }));
      durData.push(trig);
    }
    if (sched.some(function (v) { return v !== null; })) {
      durSeries.push(line('scheduling delay ms', '#94a3b8', { width: 1, points: { show: false } }));
      durData.push(sched);
    }
    count(draw('chart-duration', { fmt: fmtCount, series: durSeries, data: durData }));

    // Partitions: the most lagging (latest report) first, capped.
    var last = perReport.length ? perReport[perReport.length - 1] : {};
    var keys = Object.keys(partKeys).sort(function (a, b) {
      var la = last[a] ? (last[a].behind || 0) : -1, lb = last[b] ? (last[b].behind || 0) : -1;
      if (lb !== la) return lb - la;
      return a < b ? -1 : 1;
    });
    var shown = keys.slice(0, MAX_PART_SERIES).sort(function (a, b) {
      var pa = partKeys[a], pb = partKeys[b];
      if (pa.topic !== pb.topic) return pa.topic < pb.topic ? -1 : 1;
      return pa.partition - pb.partition;
    });
    setText('part-note', keys.length > MAX_PART_SERIES ?
      'charts show the ' + MAX_PART_SERIES + ' most lagging of ' + keys.length + ' partitions' : '');
    var recSeries = [], secSeries = [], recData = [xs], secData = [xs], statuses = [];
    shown.forEach(function (k, i) {
      var colour = PART_PALETTE[i % PART_PALETTE.length];
      recSeries.push(line(k, colour, { width: 1.5, points: { show: false } }));
      secSeries.push(line(k, colour, { width: 1.5, points: { show: false } }));
      recData.push(perReport.map(function (r) { return r[k] ? r[k].behind : null; }));
      secData.push(perReport.map(function (r) { return r[k] ? r[k].seconds : null; }));
      statuses.push(perReport.map(function (r) { return r[k] ? r[k].status : null; }));
    });
    count(draw('chart-lag-records', { fmt: fmtCount, series: recSeries, data: recData, statuses: statuses, hooks: [statusDots] }));
    count(draw('chart-lag-seconds', { fmt: function (v) { return fmtSeconds(v); }, series: secSeries, data: secData, statuses: statuses, hooks: [statusDots] }));

    var maxRatio = 1.2;
    busy.concat(vsTrig).forEach(function (v) { if (v !== null && v * 1.1 > maxRatio) maxRatio = v * 1.1; });
    count(draw('chart-busy', {
      fmt: function (v) { return v.toFixed(2); },
      yRange: [0, maxRatio],
      series: [line('busy ratio', '#0d9488', { fill: 'rgba(13,148,136,0.08)' }),
        line('batch ÷ trigger', '#e0a000', { width: 1.5 })],
      data: [xs, busy, vsTrig],
      hooks: [referenceLine(1, '#d63b3b')]
    }));

    count(draw('chart-checkpoint', {
      fmt: fmtBytes,
      series: [line('checkpoint', '#475569', { fill: 'rgba(71,85,105,0.10)' })],
      data: [xs, ckpt]
    }));

    rendered.charts = drawn;
    rendered.points = total;
    rendered.batches = xs.length;
    rendered.partitions = keys.length;
  }

  // ---- header, tiles and table ---------------------------------------------

  function renderSummary(q, hist) {
    // The list and the progress are fetched one after the other: show the
    // newer of the two last reports.
    var lp = q.lastProgress || null, h = hist.length ? hist[hist.length - 1] : null;
    if (h && (!lp || (timeOf(h) || 0) > (timeOf(lp) || 0) ||
        ((timeOf(h) || 0) === (timeOf(lp) || 0) && h.batchId > lp.batchId))) lp = h;
    setText('q-name', typeof q.name === 'string' && q.name ? q.name : '(unnamed query)');
    setText('q-id', q.id || '—');
    setText('q-run', q.runId || '—');
    var live = state.live;
    var started = live && typeof live.startTimestamp === 'string' ? Date.parse(live.startTimestamp) : NaN;
    var at = live && typeof live.timestamp === 'string' ? Date.parse(live.timestamp) : NaN;
    setText('q-start', isFinite(started) ? new Date(started).toISOString() : '—');
    setText('q-uptime', isFinite(started) && isFinite(at) ? fmtSeconds(Math.max(0, at - started) / 1000) : '—');

    var st = q.status;
    var msg = st && typeof st === 'object' ? st.message : (typeof st === 'string' ? st : null);
    setText('status-msg', msg || '—');
    var flags = [];
    if (st && typeof st === 'object') {
      if (st.isTriggerActive) flags.push('trigger active');
      if (st.isDataAvailable) flags.push('data available');
    }
    setText('status-flags', flags.join(' · '));

    var health = get(lp, 'sluice.health');
    var hs = health && typeof health.status === 'string' ? health.status : null;
    var badge = $('health');
    badge.className = statusClass(hs);
    badge.textContent = hs || 'n/a';
    setText('health-reason', health && health.reason ? health.reason : (lp ? '' : 'no batch yet'));

    var lag = get(lp, 'sluice.lag');
    if (lag && typeof lag === 'object') {
      setText('lag-records', fmtCount(lag.records));
      setText('lag-seconds', fmtSeconds(lag.seconds));
      if ('drainEtaSeconds' in lag) {
        setText('drain-eta', lag.drainEtaSeconds === null ? 'never' : fmtSeconds(lag.drainEtaSeconds));
      } else {
        setText('drain-eta', '—');
      }
      var rates = [];
      if (num(lag.arrivalRowsPerSecond) !== null) rates.push('arrival ' + fmtCount(lag.arrivalRowsPerSecond) + '/s');
      if (num(lag.capacityRowsPerSecond) !== null) rates.push('capacity ' + fmtCount(lag.capacityRowsPerSecond) + '/s');
      setText('drain-rates', rates.join(' · '));
    } else {
      var parts = lp ? partitionsOf(lp) : [];
      var sum = null;
      parts.forEach(function (x) { if (x.behind !== null) sum = (sum || 0) + x.behind; });
      setText('lag-records', fmtCount(sum));
      setText('lag-seconds', '—');
      setText('drain-eta', '—');
      setText('drain-rates', lp ? 'no sluice lag data in this report' : '');
    }

    if (lp) {
      setText('last-batch', '#' + lp.batchId + ' · ' + fmtMs(lp.batchDuration));
      var subs = [];
      var ti = num(get(lp, 'sluice.timing.triggerIntervalMs'));
      if (ti !== null && ti > 0) subs.push('trigger ' + fmtMs(ti));
      var ratio = num(get(lp, 'sluice.timing.batchDurationVsTrigger'));
      if (ratio !== null) subs.push(ratio.toFixed(2) + '× trigger');
      var t = timeOf(lp);
      if (t !== null) subs.push(fmtTime(t));
      setText('last-batch-sub', subs.join(' · '));
      setText('rate-in', fmtCount(lp.inputRowsPerSecond));
      setText('rate-proc', fmtCount(lp.processedRowsPerSecond));
      var adm = get(lp, 'sluice.admission');
      setText('admission', adm && typeof adm === 'object' ?
        'admitted ≤ ' + (adm.limit ? fmtCount(adm.limit) : 'unlimited') + (adm.reason ? ' (' + adm.reason + ')' : '') +
        (adm.limitBound === true ? ' · capped' : '') : '');
      var files = num(get(lp, 'sluice.checkpoint.files'));
      setText('ckpt-files', files !== null ? 'bytes, ' + files + ' files' : 'bytes');
    } else {
      ['last-batch', 'rate-in', 'rate-proc'].forEach(function (id) { setText(id, '—'); });
      ['last-batch-sub', 'admission'].forEach(function (id) { setText(id, ''); });
      setText('ckpt-files', 'bytes');
    }
    renderTable(lp);
    renderState(lp);
    renderDiagnosis(lp);
    renderBatches(hist);
  }

  // renderState shows the stateful operators of the last report (Spark's
  // stateOperators, downstream first) and the watermark with its delay
  // behind the wall clock; the panel is hidden for stateless queries.
  function renderState(lp) {
    var ops = lp && Array.isArray(lp.stateOperators) ? lp.stateOperators : [];
    var panel = $('state-panel'), body = $('state-rows');
    panel.hidden = !ops.length;
    body.textContent = '';
    ops.forEach(function (o, i) {
      var tr = document.createElement('tr');
      function cell(text, cls) {
        var td = document.createElement('td');
        if (cls) td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
      }
      function n(v) { return num(v) === null ? '—' : group(v); }
      cell((ops.length - 1 - i) + ' ' + (typeof o.operatorName === 'string' ? o.operatorName : '?'));
      cell(n(o.numRowsTotal), 'num');
      cell(num(o.memoryUsedBytes) === null ? '—' : fmtBytes(o.memoryUsedBytes), 'num');
      cell(n(o.numRowsUpdated), 'num');
      cell(n(o.numRowsRemoved), 'num');
      cell(n(o.numRowsDroppedByWatermark), 'num' + (num(o.numRowsDroppedByWatermark) > 0 ? ' warn' : ''));
      cell(n(o.numStateStoreInstances), 'num');
      cell(n(o.commitTimeMs), 'num');
      body.appendChild(tr);
    });
    rendered.stateRows = ops.length;
    var wm = lp && lp.eventTime && typeof lp.eventTime.watermark === 'string' ? Date.parse(lp.eventTime.watermark) : NaN;
    setText('state-watermark', isFinite(wm) && wm > 0 ?
      'watermark ' + new Date(wm).toISOString() + ' · ' + fmtSeconds(Math.max(0, Date.now() - wm) / 1000) + ' behind now' :
      (ops.length ? 'no watermark yet' : ''));
  }

  function renderDiagnosis(lp) {
    var ul = $('diagnosis'), d = get(lp, 'sluice.diagnosis');
    ul.textContent = '';
    var findings = d && Array.isArray(d.findings) ? d.findings.filter(function (f) { return typeof f === 'string'; }) : [];
    findings.forEach(function (f) {
      var li = document.createElement('li');
      li.textContent = f;
      ul.appendChild(li);
    });
    if (!findings.length) {
      var li = document.createElement('li');
      li.className = 'muted';
      li.textContent = !lp ? 'no batch yet' : (d && d.limiting ? 'nothing holds the query back; the largest share of batch time: ' + d.limiting : 'nothing to report');
      ul.appendChild(li);
    }
    setText('diagnosis-limiting', d && typeof d.limiting === 'string' && d.limiting ? 'limited by: ' + d.limiting : '');
    rendered.findings = findings.length;
  }

  var DURATION_KEYS = ['latestOffset', 'getBatch', 'queryPlanning', 'walCommit', 'addBatch', 'commitOffsets', 'triggerExecution'];

  // renderBatches lists the newest 20 batches with Spark's durationMs
  // breakdown.
  function renderBatches(hist) {
    var body = $('batch-rows');
    body.textContent = '';
    // Executed batches only: idle reports (no rows, no addBatch) are in the
    // charts, not here.
    var rows = hist.filter(function (p) {
      return p.durationMs && typeof p.durationMs === 'object' && 'addBatch' in p.durationMs;
    }).slice(-20).reverse();
    if (!rows.length) {
      var tr0 = document.createElement('tr'), td0 = document.createElement('td');
      td0.colSpan = 13; td0.className = 'muted'; td0.textContent = 'no batch yet';
      tr0.appendChild(td0); body.appendChild(tr0);
      rendered.batchRows = 0;
      return;
    }
    rows.forEach(function (p) {
      var tr = document.createElement('tr');
      function cell(text, cls) {
        var td = document.createElement('td');
        if (cls) td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
        return td;
      }
      cell('#' + p.batchId, 'num');
      cell(fmtTime(timeOf(p)));
      var rowsCell = cell(num(p.numInputRows) === null ? '—' : group(p.numInputRows), 'num');
      if (get(p, 'sluice.admission.limitBound') === true) {
        var capped = document.createElement('span');
        capped.className = 'capped'; capped.textContent = 'capped';
        rowsCell.appendChild(capped);
      }
      var limit = num(get(p, 'sluice.admission.limit'));
      cell(limit === null ? '—' : (limit > 0 ? group(limit) : 'none'), 'num');
      var dm = p.durationMs && typeof p.durationMs === 'object' ? p.durationMs : {};
      DURATION_KEYS.forEach(function (k) { cell(num(dm[k]) === null ? '—' : group(dm[k]), 'num'); });
      var lagRec = num(get(p, 'sluice.lag.records'));
      cell(lagRec === null ? '—' : group(lagRec), 'num');
      var hs = get(p, 'sluice.health.status'), b = document.createElement('span');
      b.className = statusClass(hs); b.textContent = typeof hs === 'string' ? hs : 'n/a';
      cell('').appendChild(b);
      body.appendChild(tr);
    });
    rendered.batchRows = rows.length;
  }

  function renderTable(lp) {
    var body = $('part-rows');
    var parts = lp ? partitionsOf(lp) : [];
    parts.sort(function (a, b) { return a.topic === b.topic ? a.partition - b.partition : (a.topic < b.topic ? -1 : 1); });
    body.textContent = '';
    if (!parts.length) {
      var tr = document.createElement('tr'), td = document.createElement('td');
      td.colSpan = 8; td.className = 'muted'; td.textContent = 'no lag reported yet';
      tr.appendChild(td); body.appendChild(tr);
      return;
    }
    var max = 0;
    parts.forEach(function (x) { if (x.behind !== null && x.behind > max) max = x.behind; });
    parts.forEach(function (x) {
      var tr = document.createElement('tr');
      function cell(text, cls) {
        var td = document.createElement('td');
        if (cls) td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
        return td;
      }
      cell(x.topic);
      cell(String(x.partition), 'num');
      cell(x.behind === null ? '—' : group(x.behind), 'num');
      var share = cell('', 'share'), bar = document.createElement('div'), fill = document.createElement('span');
      bar.className = 'bar';
      fill.style.width = (max > 0 && x.behind ? Math.max(2, 100 * x.behind / max) : 0) + '%';
      bar.appendChild(fill); share.appendChild(bar);
      cell(fmtSeconds(x.seconds), 'num');
      cell(x.method || '—', 'muted');
      var b = document.createElement('span');
      b.className = statusClass(x.status);
      b.textContent = x.status || 'n/a';
      cell('').appendChild(b);
      cell(x.reason || '', 'muted');
      body.appendChild(tr);
    });
  }

  // renderGroup shows a group-mode query's whole consumer group as the
  // broker describes it (GET /api/v1/queries/{id}/group): the members and,
  // per partition, the member that owns it, committed and latest offsets,
  // lag and status; this member's partitions are highlighted.
  function renderGroup(rep, lp) {
    var body = $('group-rows');
    body.textContent = '';
    var mine = get(lp, 'sluice.group.memberId'), myName = get(lp, 'sluice.group.member');
    var members = rep && Array.isArray(rep.members) ? rep.members : [];
    var parts = rep && Array.isArray(rep.partitions) ? rep.partitions.slice() : [];
    setText('group-note', rep ? [
      'group ' + (typeof rep.group === 'string' ? rep.group : '—'),
      typeof rep.state === 'string' ? rep.state : '—',
      members.length + ' member' + (members.length === 1 ? '' : 's'),
      typeof rep.protocol === 'string' && rep.protocol ? rep.protocol : null,
      typeof myName === 'string' ? 'this member: ' + myName : null
    ].filter(function (x) { return x; }).join(' · ') : '');
    var ml = $('group-members');
    ml.textContent = '';
    members.forEach(function (m, i) {
      var span = document.createElement('span');
      var n = Array.isArray(m.partitions) ? m.partitions.length : 0;
      span.textContent = (i ? ' · ' : '') + (m.clientId || m.memberId || '?') + (m.host ? ' (' + m.host + ')' : '') + ': ' +
        n + ' partition' + (n === 1 ? '' : 's') + (m.memberId === mine ? ' — this member' : '');
      ml.appendChild(span);
    });
    parts.sort(function (a, b) { return a.topic === b.topic ? a.partition - b.partition : (a.topic < b.topic ? -1 : 1); });
    var mineRows = 0;
    parts.forEach(function (x) {
      var tr = document.createElement('tr');
      function cell(text, cls) {
        var td = document.createElement('td');
        if (cls) td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
        return td;
      }
      function n(v) { return num(v) === null ? '—' : group(v); }
      if (x.memberId && x.memberId === mine) { tr.className = 'mine'; mineRows++; }
      cell(String(x.topic));
      cell(String(x.partition), 'num');
      if (x.memberId) cell((x.clientId || x.memberId) + (x.host ? ' (' + x.host + ')' : ''));
      else cell('none', 'unowned');
      cell(n(x.committedOffset), 'num');
      cell(n(x.latestOffset), 'num');
      cell(n(x.lagRecords), 'num');
      cell(num(x.lagSeconds) === null ? '—' : fmtSeconds(x.lagSeconds), 'num');
      var b = document.createElement('span');
      b.className = statusClass(x.status);
      b.textContent = typeof x.status === 'string' && x.status ? x.status : 'n/a';
      cell('').appendChild(b);
      body.appendChild(tr);
    });
    if (!parts.length) {
      var tr0 = document.createElement('tr'), td0 = document.createElement('td');
      td0.colSpan = 8; td0.className = 'muted'; td0.textContent = rep ? 'the group has no partitions yet' : 'asking the group coordinator…';
      tr0.appendChild(td0); body.appendChild(tr0);
    }
    rendered.groupRows = parts.length;
    rendered.groupMembers = members.length;
    rendered.groupMine = mineRows;
  }

  // refreshGroup asks for q's group every GROUP_MS while the query runs in
  // group mode; the panel is hidden otherwise.
  function refreshGroup(q) {
    var on = !!(q && q.reports && q.reports.group);
    $('group-panel').hidden = !on;
    if (!on) return Promise.resolve();
    if (state.groupFor !== q.id) { state.groupFor = q.id; state.groupAt = 0; renderGroup(null, null); }
    if (Date.now() - state.groupAt < GROUP_MS) return Promise.resolve();
    state.groupAt = Date.now();
    return getJSON('/api/v1/queries/' + encodeURIComponent(q.id) + '/group').then(function (rep) {
      if (state.selected === q.id) renderGroup(rep, q.lastProgress);
    }, function (e) {
      setText('group-note', 'could not describe the group: ' + e.message);
    });
  }

  // ---- limits form ---------------------------------------------------------

  function prepareLimits(q) {
    var section = $('limits'), form = $('limits-form');
    var settable = !!(q.limits && q.limits.settable);
    section.hidden = !settable;
    if (!settable || state.limitsFor === q.id) return;
    state.limitsFor = q.id;
    $('limits-answer').hidden = true;
    var writes = state.server ? state.server.writes : 'open';
    $('token-field').hidden = writes !== 'token';
    setFormEnabled(writes !== 'disabled');
    setText('limits-note', writes === 'disabled' ?
      'Changing limits is disabled: this server listens on a non-loopback address and was started without a token.' :
      (writes === 'token' ? 'A token is required.' : 'Only fields you fill in are sent.'));
    var lp = q.lastProgress;
    var adm = num(get(lp, 'sluice.admission.limit')), ti = num(get(lp, 'sluice.timing.triggerIntervalMs'));
    form.elements.maxOffsetsPerTrigger.placeholder = adm ? 'now ' + adm : 'unlimited';
    form.elements.triggerInterval.placeholder = ti ? 'now ' + ti + ' ms' : 'e.g. 2 seconds';
    if (q.limits && q.limits.readable) {
      getJSON('/api/v1/queries/' + encodeURIComponent(q.id) + '/limits').then(function (cur) {
        if (!cur || typeof cur !== 'object') return;
        ['maxOffsetsPerTrigger', 'minOffsetsPerTrigger', 'triggerInterval', 'targetBatchDuration'].forEach(function (k) {
          if (cur[k] !== undefined && cur[k] !== null && form.elements[k]) form.elements[k].placeholder = 'now ' + cur[k];
        });
      }).catch(function () { /* optional */ });
    }
  }

  function setFormEnabled(on) {
    Array.prototype.forEach.call($('limits-form').elements, function (el) { el.disabled = !on; });
  }

  function submitLimits(ev) {
    ev.preventDefault();
    var form = ev.target, body = {}, q = state.selected;
    ['maxOffsetsPerTrigger', 'minOffsetsPerTrigger'].forEach(function (k) {
      var v = form.elements[k].value.trim();
      if (v !== '') body[k] = Number(v);
    });
    ['triggerInterval', 'targetBatchDuration', 'admission'].forEach(function (k) {
      var v = form.elements[k].value.trim();
      if (v !== '') body[k] = v;
    });
    var out = $('limits-answer');
    out.hidden = false;
    if (!Object.keys(body).length) {
      out.className = 'answer err'; out.textContent = 'Fill in at least one field.';
      return;
    }
    var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    var token = form.elements.token.value;
    if (token) headers.Authorization = 'Bearer ' + token;
    out.className = 'answer'; out.textContent = 'sending ' + JSON.stringify(body) + ' …';
    fetch('/api/v1/queries/' + encodeURIComponent(q) + '/limits', {
      method: 'POST', headers: headers, body: JSON.stringify(body), cache: 'no-store'
    }).then(function (r) {
      return r.text().then(function (text) {
        var shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
        out.className = r.ok ? 'answer' : 'answer err';
        out.textContent = 'HTTP ' + r.status + '\n' + shown;
        if (r.status === 501) {
          setFormEnabled(false);
          setText('limits-note', 'This query does not support changing limits at run time.');
        }
      });
    }).catch(function (e) {
      out.className = 'answer err'; out.textContent = String(e);
    });
  }

  // ---- query picker and polling --------------------------------------------

  function renderPicker() {
    var sel = $('query-select');
    var want = state.queries.map(function (q) { return q.id; }).join('\u0001');
    if (sel.dataset.ids !== want) {
      sel.textContent = '';
      state.queries.forEach(function (q) {
        var o = document.createElement('option');
        o.value = q.id;
        o.textContent = (q.name ? q.name + ' — ' : '') + q.id;
        sel.appendChild(o);
      });
      sel.dataset.ids = want;
    }
    sel.disabled = state.queries.length < 2;
    if (state.selected) sel.value = state.selected;
  }

  function choose() {
    var fromHash = decodeURIComponent((location.hash.match(/q=([^&]+)/) || [])[1] || '');
    var ids = state.queries.map(function (q) { return q.id; });
    var pick = ids.indexOf(fromHash) >= 0 ? fromHash : (ids.indexOf(state.selected) >= 0 ? state.selected : ids[0] || null);
    if (pick !== state.selected) {
      state.selected = pick;
      state.limitsFor = null;
      resetHistory();
    }
    return pick;
  }

  function setConn(ok, text) {
    var c = $('conn');
    c.className = 'conn ' + (ok ? 'live' : 'down');
    c.textContent = text;
  }

  function tick() {
    var started = state.server ? Promise.resolve(state.server) :
      getJSON('/api/v1/server').then(function (s) { state.server = s; }, function () { state.server = { writes: 'open' }; });
    started.then(function () { return getJSON('/api/v1/queries'); }).then(function (list) {
      state.queries = Array.isArray(list) ? list.filter(function (q) { return q && typeof q.id === 'string'; }) : [];
      var id = choose();
      renderPicker();
      $('empty').hidden = !!id;
      $('view').hidden = !id;
      if (!id) return null;
      var url = '/api/v1/queries/' + encodeURIComponent(id) + '/progress' + (state.history.length ? '?limit=20' : '');
      var q0 = state.queries.filter(function (x) { return x.id === id; })[0];
      var live = q0 && q0.reports && q0.reports.live ?
        getJSON('/api/v1/queries/' + encodeURIComponent(id) + '/live').catch(function () { return null; }) : Promise.resolve(null);
      return Promise.all([getJSON(url), live]).then(function (got) {
        var reports = got[0];
        if (id !== state.selected) return;
        merge(reports);
        state.live = got[1];
        if (got[1]) mergeArrival(got[1].arrival);
        var q = state.queries.filter(function (x) { return x.id === id; })[0];
        renderSummary(q, state.history);
        renderCharts(state.history);
        prepareLimits(q);
        rendered.query = id;
        return refreshGroup(q);
      });
    }).then(function () {
      rendered.polls++;
      setConn(true, 'live · ' + new Date().toISOString());
    }).catch(function (e) {
      setConn(false, 'disconnected: ' + e.message);
    }).then(function () {
      setTimeout(tick, POLL_MS);
    });
  }

  function init() {
    $('limits-form').addEventListener('submit', submitLimits);
    $('query-select').addEventListener('change', function (e) {
      location.hash = 'q=' + encodeURIComponent(e.target.value);
    });
    window.addEventListener('hashchange', function () { choose(); });
    tick();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
