// The dashboard: every panel is one call to the query API, all at one snapshot (the current one plus what is
// staged above it, or a past one picked), redrawn when the data changes: a new snapshot, or newly staged
// events (each answer's meta.freshness says which sequence number of each partition it includes). No inline script or style (the page is served under a strict
// Content-Security-Policy), no requests to anywhere but this origin.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  // Under the Functions host the API wants its function key: taken once from ?code= and sent as a header.
  const key = params.get("code") || sessionStorage.getItem("functionKey");
  if (key) sessionStorage.setItem("functionKey", key);
  const pollMs = Math.max(250, Number(params.get("poll")) || 10000);

  const $ = (id) => document.getElementById(id);
  const state = { ready: false, snapshotId: null, dataKey: null, committedAt: null, loads: 0, series: null, errors: [] };
  window.dashboardState = state;
  let chart = null;
  let qualityChart = null;
  let scoresChart = null;
  const qualityQuery = { hours: params.get("quality_hours") || 24 };
  if (params.get("quality_bucket")) qualityQuery.bucket = params.get("quality_bucket");

  for (const name of ["ticker", "interval", "days", "as_of"]) {
    if (params.get(name)) $(name).value = params.get(name);
  }

  // Snapshot ids are 64-bit: read them from the JSON text, not as (rounded) doubles.
  const ID_KEYS = new Set(["snapshot_id", "parent_id", "current_snapshot_id"]);
  const parse = (text) => JSON.parse(text, (k, v, context) => (ID_KEYS.has(k) && context && typeof context.source === "string" && v !== null ? context.source : v));

  // What an answer includes: its snapshot and, per partition, the last sequence number (committed or staged).
  function dataKey(meta) {
    const sources = (meta.freshness && meta.freshness.sources) || {};
    return `${meta.snapshot_id}|${Object.keys(sources).sort().map((s) => `${s}:${sources[s].last_sequence}`).join(",")}`;
  }

  function stagedNote(meta) {
    const tail = meta.freshness && meta.freshness.tail;
    if (!tail || !tail.included || tail.entries === 0) return "";
    const age = meta.freshness_s === null || meta.freshness_s === undefined ? "" : `, newest event ${Number(meta.freshness_s).toFixed(1)} s old`;
    return `; plus ${tail.rows} staged events not yet committed${age}`;
  }

  async function api(path, query, base = "/api/sentiment/") {
    const headers = key ? { "x-functions-key": key } : {};
    const response = await fetch(`${base}${path}?${new URLSearchParams(query)}`, { headers });
    const body = parse(await response.text());
    if (!response.ok) throw new Error(`${path}: ${body.error ? body.error.message : response.status}`);
    return body;
  }

  const number = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
  const percent = (x) => `${(100 * x).toFixed(1)} %`;
  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }
  function fill(tableId, rows, render) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(
      ...rows.map((row) => {
        const tr = document.createElement("tr");
        tr.append(...render(row));
        return tr;
      })
    );
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = cell("no data in this window");
      td.colSpan = $(tableId).querySelectorAll("th").length;
      tr.append(td);
      body.append(tr);
    }
  }
  const scoreClass = (x) => (x > 0.05 ? "num bull" : x < -0.05 ? "num bear" : "num");

  function drawSeries(points, ticker, interval) {
    const xs = points.map((p) => Date.parse(p.bucket_start) / 1000);
    const scores = points.map((p) => p.average_score);
    const volumes = points.map((p) => p.message_count);
    state.series = { bucket_start: points.map((p) => p.bucket_start), average_score: scores, message_count: volumes };
    $("series-title").textContent = `${ticker}, per ${interval}`;
    const width = Math.max(300, $("chart").clientWidth || 800);
    const options = {
      width,
      height: 320,
      scales: { x: { time: true }, score: { range: [-1, 1] }, volume: {} },
      axes: [{}, { scale: "score", label: "average score" }, { scale: "volume", side: 1, label: "messages", grid: { show: false } }],
      series: [
        {},
        { label: "average score", scale: "score", stroke: "#0969da", width: 2 },
        { label: "messages", scale: "volume", stroke: "#8c959f", fill: "rgba(140,149,159,0.25)", paths: uPlot.paths.bars({ size: [0.8, 40] }) },
      ],
    };
    if (chart) chart.destroy();
    chart = new uPlot(options, [xs, scores, volumes], $("chart"));
  }

  // The quality panel: what each commit's profile says (rows, dead letters by rule, late events) over time,
  // each model version's score drift against its trailing week, and its score histogram.
  const span = (s) => (s >= 86400 && s % 86400 === 0 ? `${s / 86400} days` : s >= 3600 && s % 3600 === 0 ? `${s / 3600} h` : s >= 60 && s % 60 === 0 ? `${s / 60} min` : `${s} s`);
  const PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a"];
  async function loadQuality() {
    try {
      const quality = await api("quality", qualityQuery, "/api/");
      const d = quality.data;
      state.quality = { points: d.points.length, drift: quality.drift.distributions, fields: d.dead_letters_by_field };
      const bucket = quality.meta.bucket_s;
      $("quality-title").textContent = `last ${span(quality.meta.hours * 3600)}, per ${span(bucket)}`;
      const xs = d.points.map((p) => Date.parse(p.time_bucket) / 1000);
      // The buckets that hold data and one either side (one lone bucket would otherwise stretch the axis
      // over years).
      const to = Date.parse(quality.meta.computed_at) / 1000;
      const range = xs.length ? [xs[0] - bucket, Math.max(xs[xs.length - 1] + bucket, xs[0] + 6 * bucket)] : [to - quality.meta.hours * 3600, to];
      const width = Math.max(300, $("quality-chart").clientWidth || 800);
      if (qualityChart) qualityChart.destroy();
      qualityChart = new uPlot(
        {
          width,
          height: 260,
          scales: { x: { time: true, range: () => range }, count: {}, ratio: { range: [0, 1] } },
          axes: [{}, { scale: "count", label: "events" }, { scale: "ratio", side: 1, label: "dead-letter ratio", grid: { show: false } }],
          series: [
            {},
            { label: "rows", scale: "count", stroke: "#8c959f", fill: "rgba(140,149,159,0.25)", paths: uPlot.paths.bars({ size: [0.8, 40] }) },
            { label: "dead letters", scale: "count", stroke: "#cf222e", width: 2 },
            { label: "late (> 5 min)", scale: "count", stroke: "#bf8700", width: 2 },
            { label: "dead-letter ratio", scale: "ratio", stroke: "#8250df", width: 1, dash: [4, 4] },
          ],
        },
        [xs, d.points.map((p) => p.rows), d.points.map((p) => p.dead_letters), d.points.map((p) => p.late), d.points.map((p) => p.dead_letter_ratio)],
        $("quality-chart")
      );
      const drift = quality.drift;
      $("drift-note").textContent = `Population stability index of the last ${span(drift.window_s)} against the ${span(drift.baseline_s)} before; above ${drift.threshold} fires (at least ${drift.min_rows} rows in each).`;
      fill("drift", drift.distributions, (x) => [
        cell(x.source_system),
        cell(`${x.model_name || "–"}/${x.processing_version}`),
        cell(x.psi === null ? "–" : number(x.psi, 2), "num"),
        cell(`${x.current_rows} / ${x.baseline_rows}`, "num"),
        cell(x.firing ? "drifting" : x.psi === null ? "too few rows" : "stable", x.firing ? "bear" : ""),
      ]);
      const rules = {};
      for (const p of d.points) for (const [rule, n] of Object.entries(p.dead_letters_by_rule)) rules[rule] = (rules[rule] || 0) + n;
      const byCount = (o) => Object.entries(o).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
      fill("dead-rules", byCount(rules), ([rule, n]) => [cell(rule), cell(n, "num")]);
      fill("dead-fields", byCount(d.dead_letters_by_field), ([field, n]) => [cell(field), cell(n, "num")]);
      const models = d.models.slice(0, PALETTE.length);
      const bins = Array.from({ length: 20 }, (_, i) => -0.95 + 0.1 * i);
      if (scoresChart) scoresChart.destroy();
      scoresChart = new uPlot(
        {
          width: Math.max(300, $("scores-chart").clientWidth || 400),
          height: 220,
          scales: { x: { time: false, range: [-1, 1] }, share: { range: [0, 1] } },
          axes: [{ label: "score" }, { scale: "share", label: "share of rows" }],
          series: [{}, ...models.map((m, i) => ({ label: `${m.source_system} ${m.model}`, scale: "share", stroke: PALETTE[i], width: 2 }))],
        },
        [bins, ...models.map((m) => m.score_histogram.map((n) => (m.rows ? n / m.rows : 0)))],
        $("scores-chart")
      );
    } catch (e) {
      state.errors.push(String(e));
      $("quality-title").textContent = `(unavailable: ${e.message || e})`;
    }
  }

  async function loadSnapshots() {
    const history = await api("snapshots", { limit: 50 });
    const select = $("as_of");
    const chosen = select.value;
    select.replaceChildren(new Option("current", ""));
    for (const s of history.data) {
      select.append(new Option(`${s.snapshot_id} · ${s.committed_at.replace("T", " ").slice(0, 19)} · ${s.operation}${s.added_rows ? ` +${s.added_rows}` : ""}`, s.snapshot_id));
    }
    select.value = chosen;
    return history;
  }

  async function load() {
    const ticker = $("ticker").value.trim().toUpperCase();
    const interval = $("interval").value;
    const days = $("days").value;
    const asOf = $("as_of").value;
    const at = asOf ? { as_of: asOf } : {};
    const scope = { days, ...at };
    try {
      const [series, top, summary, aspects, entities, toxicity, history] = await Promise.all([
        api("timeseries", { ticker, interval, ...scope }),
        api("tickers", { limit: 10, ...scope }),
        api("summary", { ticker, ...scope }),
        api("aspects", { ticker, limit: 10, ...scope }),
        api("entities", { ticker, limit: 10, ...scope }),
        api("toxicity", { limit: 10, ...scope }),
        loadSnapshots(),
      ]);
      const snapshotId = series.meta.snapshot_id;
      const entry = history.data.find((s) => s.snapshot_id === snapshotId);
      state.snapshotId = snapshotId;
      state.dataKey = dataKey(series.meta);
      state.committedAt = entry ? entry.committed_at : null;
      $("snapshot").textContent = (snapshotId
        ? `Snapshot ${snapshotId}${entry ? `, committed ${entry.committed_at.replace("T", " ").slice(0, 19)} UTC (${entry.operation}${entry.total_rows ? `, ${entry.total_rows} rows` : ""})` : ""}${asOf ? " — a past snapshot" : ""}`
        : "No commit yet") + stagedNote(series.meta) + ".";
      drawSeries(series.data, ticker, interval);
      $("tickers").replaceChildren(...top.data.map((t) => new Option(t.ticker)));
      fill("top", top.data, (t) => [cell(t.ticker), cell(t.message_count, "num"), cell(number(t.average_score), scoreClass(t.average_score)), cell(percent(t.bullish_share), "num bull"), cell(percent(t.bearish_share), "num bear")]);
      const s = summary.data;
      $("summary").replaceChildren(
        ...[["ticker", s.ticker], ["messages", s.message_count], ["average score", number(s.average_score)], ["label", s.label || "–"], ["positive / negative / neutral", `${s.positive} / ${s.negative} / ${s.neutral}`]].flatMap(([k, v]) => {
          const dt = document.createElement("dt");
          dt.textContent = k;
          const dd = document.createElement("dd");
          dd.textContent = v;
          return [dt, dd];
        })
      );
      fill("emotions", s.emotions, (e) => [cell(e.emotion), cell(number(e.average_intensity), "num"), cell(e.records, "num")]);
      fill("aspects", aspects.data, (a) => [cell(a.aspect), cell(a.mentions, "num"), cell(number(a.average_sentiment), scoreClass(a.average_sentiment))]);
      fill("entities", entities.data, (e) => [cell(e.entity), cell(e.entity_type), cell(e.mentions, "num"), cell(number(e.average_score), scoreClass(e.average_score))]);
      fill("toxicity", toxicity.data.messages, (m) => [cell(m.event_timestamp.replace("T", " ").slice(0, 19)), cell(m.ticker || "–"), cell(m.source_system), cell(number(m.toxicity_score, 2), "num"), cell(m.text_content, "text")]);
      $("error").hidden = true;
      await loadQuality();
      state.loads += 1;
      state.ready = true;
    } catch (e) {
      state.errors.push(String(e));
      $("error").textContent = String(e.message || e);
      $("error").hidden = false;
    }
  }

  // New data (a new snapshot, or newly staged events) redraws the page, unless a past snapshot is being
  // looked at. The question asked to find out is the cheapest the API has.
  async function poll() {
    try {
      if (!$("as_of").value) {
        const probe = await api("tickers", { limit: 1, days: 1 });
        if (dataKey(probe.meta) !== state.dataKey) await load();
      }
    } catch (e) {
      state.errors.push(String(e));
    }
    setTimeout(poll, pollMs);
  }

  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("as_of").addEventListener("change", load);
  window.addEventListener("resize", () => {
    if (chart) chart.setSize({ width: Math.max(300, $("chart").clientWidth), height: 320 });
    if (qualityChart) qualityChart.setSize({ width: Math.max(300, $("quality-chart").clientWidth), height: 260 });
  });
  load().then(() => setTimeout(poll, pollMs));
})();
