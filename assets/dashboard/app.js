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

  async function api(path, query) {
    const headers = key ? { "x-functions-key": key } : {};
    const response = await fetch(`/api/sentiment/${path}?${new URLSearchParams(query)}`, { headers });
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
  window.addEventListener("resize", () => chart && chart.setSize({ width: Math.max(300, $("chart").clientWidth), height: 320 }));
  load().then(() => setTimeout(poll, pollMs));
})();
