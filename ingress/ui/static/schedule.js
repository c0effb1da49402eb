// Schedules: a cron input with data-cron-preview="<id>" gets a live description and its next fire
// times while the operator types (debounced; the server's /ui/cron/describe does the reading, so
// the page says exactly what the ticker will do). A form with data-confirm="<question>" asks first.
(function () {
  "use strict";
  var DELAY_MS = 300;

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function show(box, body) {
    box.replaceChildren();
    if (body.error) {
      var problem = element("p", "error");
      problem.setAttribute("data-role", "error");
      problem.append(element("code", "", body.path || "$"), ": " + body.error);
      box.append(problem);
      return;
    }
    var words = element("p", "description", body.description || "(no description for this expression)");
    words.setAttribute("data-role", "description");
    var times = element("ol", "times");
    times.setAttribute("data-role", "next");
    (body.next || []).forEach(function (t) {
      var item = element("li", "", t.local + " ");
      item.append(element("span", "muted", t.utc));
      times.append(item);
    });
    box.append(words, times);
    if (body.notes && body.notes.length) {
      var notes = element("ul", "notes");
      notes.setAttribute("data-role", "notes");
      body.notes.forEach(function (n) { notes.append(element("li", "", n)); });
      box.append(notes);
    }
  }

  function watch(cron) {
    var box = document.getElementById(cron.getAttribute("data-cron-preview"));
    var zone = document.getElementById(cron.getAttribute("data-zone-input"));
    if (!box) return;
    var timer = null;
    var asked = 0;
    function ask() {
      var mine = ++asked;
      var query = new URLSearchParams({ cron: cron.value, timezone: zone ? zone.value : "UTC" });
      fetch("/ui/cron/describe?" + query.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (response.redirected) { window.location.reload(); return null; }  // the session ended
          return response.json();
        })
        .then(function (body) {
          if (body && mine === asked) {  // an older answer arriving late is dropped
            show(box, body);
            box.setAttribute("data-for", cron.value);
          }
        })
        .catch(function () { /* a blip: the next keystroke asks again */ });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(ask, DELAY_MS);
    }
    cron.addEventListener("input", later);
    if (zone) zone.addEventListener("input", later);
  }

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-cron-preview]").forEach(watch);
  });
})();
