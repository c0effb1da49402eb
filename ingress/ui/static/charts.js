// Charts of the model and forecast pages, drawn with the vendored uPlot (static/vendor, MIT).
// An element with data-chart="model|forecast" and data-src="<json url under /ui>" is filled in;
// the data comes from that session-protected endpoint, never from an inline script.
(function () {
  "use strict";
  var COLORS = ["#2455c3", "#1c7c3a", "#b54708", "#6941c6", "#c11574", "#0e7090"];

  function width(el) { return Math.max(320, Math.min(1100, el.clientWidth || 900)); }

  function note(el, text, cls) {
    var p = document.createElement("p");
    p.className = cls || "muted";
    p.textContent = text;
    el.appendChild(p);
  }

  function load(el) {
    return fetch(el.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.redirected) { window.location.reload(); return null; }
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.detail || body.error || response.status);
          return body;
        });
      });
  }

  function modelChart(el, data) {
    if (!data.x.length) { note(el, "No metric history yet."); return; }
    var series = [{}];
    var columns = [data.x];
    data.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true });
      columns.push(s.values);
    });
    data.thresholds.forEach(function (t) {
      series.push({ label: t.metric + " " + t.direction + " " + t.threshold + " (" + t.schedule + ")",
                    stroke: "#b42318", width: 1.5, dash: [6, 4], points: { show: false } });
      columns.push(data.x.map(function () { return t.threshold; }));
    });
    var opts = { width: width(el), height: 320, series: series, scales: { x: { time: true } },
                 axes: [{}, { label: "metric" }] };
    el.classList.add("drawn");
    new uPlot(opts, columns, el);
  }

  // one x axis for history and forecast: the union of their times, gaps as null
  function forecastChart(box, c) {
    var el = document.createElement("div");
    el.className = "chart";
    el.setAttribute("data-series", c.series_id);
    var title = document.createElement("h2");
    title.textContent = c.series_id + " · " + c.model + " (" + c.backend + ")";
    box.appendChild(title);
    box.appendChild(el);
    var xs = [], history = [], mean = [], lo = [], hi = [], opts, series;
    if (c.forecast) {
      var qs = c.forecast.length ? Object.keys(c.forecast[0].quantiles).map(Number).sort(function (a, b) { return a - b; }) : [];
      var low = qs.length ? String(qs[0]) : null, high = qs.length > 1 ? String(qs[qs.length - 1]) : null;
      function q(p, key) { var v = p.quantiles[key]; if (v === undefined) v = p.quantiles[String(Number(key))]; return v === undefined ? null : v; }
      c.history.forEach(function (p) { xs.push(p[0]); history.push(p[1]); mean.push(null); lo.push(null); hi.push(null); });
      c.forecast.forEach(function (p) {
        xs.push(p.t); history.push(null); mean.push(p.mean);
        lo.push(low ? q(p, low) : null); hi.push(high ? q(p, high) : null);
      });
      series = [{},
        { label: "history", stroke: "#1d2330", width: 1.5 },
        { label: "mean", stroke: "#2455c3", width: 2 },
        { label: "q" + (low || ""), stroke: "rgba(36,85,195,.35)", width: 1 },
        { label: "q" + (high || ""), stroke: "rgba(36,85,195,.35)", width: 1 }];
      opts = { width: width(box), height: 280, series: series, scales: { x: { time: true } },
               bands: high ? [{ series: [4, 3], fill: "rgba(36,85,195,.15)" }] : [] };
      if (c.accuracy && c.accuracy.mase !== null) note(box, "validation MASE " + c.accuracy.mase.toFixed(3) +
        (c.accuracy.smape !== null ? " · sMAPE " + c.accuracy.smape.toFixed(3) : "") +
        (c.accuracy.validated_points ? " on " + c.accuracy.validated_points + " points" : ""));
      if (c.selection) note(box, c.selection);
      el.classList.add("drawn");
      new uPlot(opts, [xs, history, mean, lo, hi], el);
    } else {
      var values = [], marks = [];
      c.scores.forEach(function (p) { xs.push(p.t); values.push(p.value); marks.push(p.anomaly ? p.value : null); });
      series = [{},
        { label: "value", stroke: "#1d2330", width: 1.5 },
        { label: "anomaly", stroke: "#b42318", width: 0, paths: function () { return null; },
          points: { show: true, size: 9, fill: "#b42318", stroke: "#b42318" } }];
      opts = { width: width(box), height: 280, series: series, scales: { x: { time: true } } };
      note(box, c.anomalies + " anomalies (score threshold " + (c.threshold === null ? "n/a" : c.threshold.toFixed(3)) + ")");
      el.classList.add("drawn");
      new uPlot(opts, [xs, values, marks], el);
    }
  }

  function forecastCharts(el, data) {
    if (!data.charts.length) { note(el, "This job has no series."); return; }
    data.charts.forEach(function (c) { forecastChart(el, c); });
    var next = document.getElementById("next");
    if (next && data.next_cursor) {
      next.href = el.getAttribute("data-page") + "?cursor=" + encodeURIComponent(data.next_cursor);
      next.hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      load(el).then(function (data) {
        if (data === null) return;
        (el.getAttribute("data-chart") === "model" ? modelChart : forecastCharts)(el, data);
      }).catch(function (err) { note(el, "The chart could not be loaded: " + err.message, "error"); });
    });
  });
})();
