// Draws the report's charts as inline SVG from the JSON in #report-data. No network, no library.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  // One color per sequence, the same in every chart.
  const colorOf = new Map(data.sequences.map((row, index) => [row.sequence, COLORS[index % COLORS.length]]));
  const color = (name) => colorOf.get(name) || COLORS[0];

  // Every day from the first to the last, so quiet days show as zero.
  function dayRange(days) {
    const sorted = [...days].sort();
    if (!sorted.length) return [];
    const out = [], end = new Date(sorted[sorted.length - 1] + "T00:00:00Z");
    for (let day = new Date(sorted[0] + "T00:00:00Z"); day <= end; day.setUTCDate(day.getUTCDate() + 1)) {
      out.push(day.toISOString().slice(0, 10));
    }
    return out;
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, attrs) {
    const node = svg("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }

  function empty(host, message) {
    const note = document.createElement("p");
    note.className = "empty";
    note.textContent = message;
    host.appendChild(note);
    host.dataset.drawn = "0";
  }

  // Horizontal bars: [{label, value, note}] scaled to the largest value (or to `max`).
  function barChart(host, bars, options) {
    if (!bars.length) return empty(host, options.emptyMessage || "nothing to show");
    const rowHeight = 26, labelWidth = options.labelWidth || 260, width = 880;
    const barWidth = width - labelWidth - 170;
    const max = options.max || Math.max(1, ...bars.map((bar) => bar.value));
    const chart = svg("svg", { width: width, height: bars.length * rowHeight + 8, role: "img",
      viewBox: `0 0 ${width} ${bars.length * rowHeight + 8}`, class: "bars" }, host);
    bars.forEach((bar, index) => {
      const y = 4 + index * rowHeight;
      text(chart, labelWidth - 8, y + 17, bar.label, { "text-anchor": "end", class: "label" });
      svg("rect", { x: labelWidth, y: y + 3, width: barWidth, height: rowHeight - 8, class: "track" }, chart);
      const length = Math.max(bar.value > 0 ? 2 : 0, (barWidth * bar.value) / max);
      const rect = svg("rect", { x: labelWidth, y: y + 3, width: length, height: rowHeight - 8,
        class: "bar", fill: options.color || COLORS[0], "data-value": bar.value }, chart);
      svg("title", {}, rect).textContent = `${bar.label}: ${bar.note || bar.value}`;
      text(chart, labelWidth + barWidth + 8, y + 17, bar.note || String(bar.value), { class: "value" });
    });
    host.dataset.drawn = String(bars.length);
  }

  // One line per series over the union of their days; y from 0 to the largest value.
  function lineChart(host, series) {
    if (!series.length) return empty(host, "no conversions in this period");
    const days = dayRange(new Set(series.flatMap((s) => s.points.map((p) => p.day))));
    const width = 880, height = 280, left = 48, right = 16, top = 16, bottom = 48;
    const peak = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.value)));
    const max = peak < 4 ? peak : Math.ceil(peak / 4) * 4;
    const x = (day) => left + (days.length === 1 ? (width - left - right) / 2
      : (days.indexOf(day) * (width - left - right)) / (days.length - 1));
    const y = (value) => top + (height - top - bottom) * (1 - value / max);
    const chart = svg("svg", { width: width, height: height, viewBox: `0 0 ${width} ${height}`,
      role: "img", class: "lines" }, host);
    const ticks = max < 4 ? max : 4;
    for (let tick = 0; tick <= ticks; tick++) {
      const value = (max * tick) / ticks;
      svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }, chart);
      text(chart, left - 6, y(value) + 4, Number.isInteger(value) ? value : value.toFixed(1),
        { "text-anchor": "end", class: "axis" });
    }
    const every = Math.max(1, Math.ceil(days.length / 8));
    days.forEach((day, index) => {
      // a date is ~70px wide: one near the right edge ends there instead of being cut off
      const anchor = x(day) + 36 > width ? "end" : "middle";
      if (index % every === 0) text(chart, x(day), height - bottom + 18, day, { "text-anchor": anchor, class: "axis" });
    });
    series.forEach((s, index) => {
      const stroke = color(s.name);
      const values = new Map(s.points.map((p) => [p.day, p.value]));
      const points = days.map((day) => `${x(day)},${y(values.get(day) || 0)}`).join(" ");
      svg("polyline", { points: points, fill: "none", stroke: stroke, "stroke-width": 2,
        class: "series", "data-series": s.name }, chart);
      s.points.forEach((p) => {
        const dot = svg("circle", { cx: x(p.day), cy: y(p.value), r: 3.5, fill: stroke, class: "point" }, chart);
        svg("title", {}, dot).textContent = `${s.name}, ${p.day}: ${p.value}`;
      });
      const legendX = left + (index % 4) * 205, legendY = height - 10;
      svg("rect", { x: legendX, y: legendY - 9, width: 10, height: 10, fill: stroke }, chart);
      text(chart, legendX + 14, legendY, s.name, { class: "legend" });
    });
    host.dataset.drawn = String(series.length);
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : `${Math.round(value * 1000) / 10}%`;
  }

  function conversions() {
    const bySequence = new Map();
    for (const row of data.conversions) {
      if (!bySequence.has(row.sequence)) bySequence.set(row.sequence, []);
      bySequence.get(row.sequence).push({ day: row.day, value: row.converted });
    }
    const series = [...bySequence].map(([name, points]) => ({ name: name, points: points }));
    lineChart(document.getElementById("conversions"), series);
  }

  function dropoff() {
    const host = document.getElementById("dropoff");
    const names = Object.keys(data.dropoff);
    if (!names.length) return empty(host, "no sequences");
    names.forEach((name) => {
      const box = document.createElement("div");
      box.className = "chart dropoff";
      box.dataset.sequence = name;
      const title = document.createElement("h3");
      title.textContent = name;
      box.appendChild(title);
      host.appendChild(box);
      const bars = data.dropoff[name].map((step) => ({
        label: step.name, value: step.reached,
        note: `${step.reached} (${percent(step.reached_rate)})`,
      }));
      barChart(box, bars, { color: color(name), emptyMessage: "no steps" });
    });
    host.dataset.drawn = String(names.length);
  }

  function failures() {
    const bars = data.failures.map((row) => ({
      label: `${row.channel}: ${row.reason}`.slice(0, 60), value: row.failed,
    }));
    barChart(document.getElementById("failures"), bars,
      { color: "#dc2626", labelWidth: 420, emptyMessage: "no failures in this period" });
  }

  conversions();
  dropoff();
  failures();
  document.body.dataset.chartsDrawn = String(document.querySelectorAll("[data-drawn]").length);
})();
