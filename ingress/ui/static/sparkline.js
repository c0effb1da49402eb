// Per-minute bars on a <canvas data-spark="n,n,..." data-failed="n,n,...">: every outcome in the
// accent colour, the failed part in red. The data is in the attributes (no inline script under the
// CSP); ui.js swaps the page's main element on refresh, so new canvases are drawn as they appear.
(function () {
  "use strict";
  var OK = "#2455c3", BAD = "#b42318", BASE = "#d8dce3";

  function numbers(text) {
    return (text || "").split(",").map(function (v) { var n = parseInt(v, 10); return n > 0 ? n : 0; });
  }

  function draw(canvas) {
    canvas.setAttribute("data-drawn", "1");
    var all = numbers(canvas.getAttribute("data-spark"));
    var failed = numbers(canvas.getAttribute("data-failed"));
    var ratio = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    var ctx = canvas.getContext("2d");
    if (!ctx || !all.length) return;
    ctx.scale(ratio, ratio);
    var peak = Math.max.apply(null, all.concat([1]));
    var step = w / all.length, bar = Math.max(1, step - 1);
    ctx.fillStyle = BASE;
    ctx.fillRect(0, h - 1, w, 1);
    all.forEach(function (n, i) {
      if (!n) return;
      var x = i * step, full = Math.max(1, (n / peak) * (h - 2));
      var bad = Math.min(full, failed[i] ? Math.max(1, (failed[i] / peak) * (h - 2)) : 0);
      ctx.fillStyle = OK;
      ctx.fillRect(x, h - full, bar, full - bad);
      if (bad) { ctx.fillStyle = BAD; ctx.fillRect(x, h - bad, bar, bad); }
    });
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-spark]:not([data-drawn])").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
    new MutationObserver(drawAll).observe(document.body, { childList: true, subtree: true });
  });
})();
