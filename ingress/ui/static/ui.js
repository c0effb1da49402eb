// Live updates without a framework: an element with data-refresh="<ms>" is re-fetched from the
// current URL and swapped in place. The server stops sending data-refresh once there is nothing
// left to watch (a finished job), which ends the polling.
(function () {
  "use strict";
  function schedule(el) {
    var ms = parseInt(el.getAttribute("data-refresh"), 10);
    if (!(ms > 0)) return;
    setTimeout(function () { refresh(el.id); }, ms);
  }
  function refresh(id) {
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
        var current = document.getElementById(id);
        if (!fresh || !current) return;
        current.replaceWith(fresh);
        schedule(fresh);
      })
      .catch(function () {
        var current = document.getElementById(id);
        if (current) schedule(current);  // a blip: try again later
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(schedule);
  });
})();
