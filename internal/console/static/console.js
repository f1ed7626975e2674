// console.js: the console's only script (its Content-Security-Policy allows no
// other, and no inline script). It moves the running page's progress bars
// with the progress events, and follows a running task's log on its page,
// both over server-sent events. Every page works without it. It writes what
// it receives with textContent only: never as HTML.
(function () {
  "use strict";

  function pct(p) {
    return typeof p === "number" ? p.toFixed(1) + "%" : "";
  }

  function set(root, selector, value) {
    var el = root.querySelector(selector);
    if (el) {
      el.textContent = value;
    }
  }

  // show puts a progress event into root: a row of the running page, or the
  // progress line of a task's page.
  function show(root, ev) {
    var bar = root.querySelector("progress");
    if (bar) {
      if (typeof ev.percent === "number") {
        bar.value = Math.max(0, Math.min(100, ev.percent));
      } else {
        bar.removeAttribute("value");
      }
    }
    set(root, ".stage", ev.stage || "");
    set(root, ".pct", pct(ev.percent));
    set(root, ".speed", ev.speed || "");
    set(root, ".eta", ev.eta ? (root.tagName === "TR" ? ev.eta : "eta " + ev.eta) : "");
    if (ev.stage === "completed") {
      root.classList.add("ended");
      if (bar) {
        bar.value = 100;
      }
    } else if (ev.stage === "failed") {
      root.classList.add("failed");
    }
  }

  function ago(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) {
      return s + "s";
    }
    var m = Math.floor(s / 60);
    if (m < 60) {
      return m + "m" + String(s % 60).padStart(2, "0") + "s";
    }
    return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
  }

  // running follows every task of the running page; a task it has no row for
  // reloads the page (once a second at most), so new tasks appear.
  function running(el) {
    var es = new EventSource(el.getAttribute("data-stream"));
    var reloading = false;
    set(document, "#live-state", "The bars move as the progress events come.");
    es.addEventListener("progress", function (m) {
      var ev;
      try {
        ev = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      var row = document.querySelector('tr[data-task="' + Number(ev.taskId) + '"]');
      if (row) {
        show(row, ev);
      } else if (!reloading && ev.stage !== "completed" && ev.stage !== "failed") {
        reloading = true;
        window.setTimeout(function () { window.location.reload(); }, 1000);
      }
    });
    window.setInterval(function () {
      document.querySelectorAll("td.elapsed[data-since]").forEach(function (td) {
        var since = Number(td.getAttribute("data-since"));
        if (since > 0) {
          td.textContent = ago(Date.now() - since);
        }
      });
    }, 1000);
  }

  // follow shows a running task's log and progress as they come, until it
  // ends.
  function follow(article) {
    var log = document.getElementById("log");
    var line = document.getElementById("task-progress");
    var fresh = true;
    var es = new EventSource(article.getAttribute("data-follow"));
    es.onmessage = function (m) {
      var o;
      try {
        o = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      if (log && fresh && "log" in o) {
        log.textContent = ""; // the stream starts with the last lines again
      }
      fresh = false;
      if ("log" in o && log) {
        var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.append(String(o.log) + "\n");
        if (atEnd) {
          log.scrollTop = log.scrollHeight;
        }
      } else if (o.progress && line) {
        show(line, o.progress);
      } else if (o.end) {
        es.close();
        set(document, "#row-status", o.end);
        article.classList.add(o.end === "completed" ? "ended" : "failed");
        var note = document.getElementById("ended-note");
        if (note) {
          note.textContent = "The task " + (o.end === "completed" ? "completed" : "failed") +
            ". Search again for its row, its webhook events and its lifecycle lines as they are now.";
          note.hidden = false;
        }
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.querySelector("#running[data-stream]");
    if (table) {
      running(table);
    }
    var task = document.querySelector("#task[data-follow]");
    if (task) {
      follow(task);
    }
  });
})();
