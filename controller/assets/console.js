// ordo console: the live log of an execution (Server-Sent Events) and the log views.
// Pages work without it; it only follows a run as it goes.
"use strict";
(function () {
  var summary = document.getElementById("summary");
  if (!summary) return;
  var id = summary.dataset.id;
  var byServer = document.getElementById("log-by-server");
  var merged = document.getElementById("log-merged");
  var radios = document.querySelectorAll("input[name=view]");
  radios.forEach(function (r) {
    r.addEventListener("change", function () {
      var m = document.getElementById("view-merged").checked;
      merged.hidden = !m;
      byServer.hidden = m;
    });
  });
  if (summary.dataset.running !== "true" || !window.EventSource) return;

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function clock(ms) {
    var d = new Date(ms);
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds()) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }
  function line(l, withServer) {
    var span = document.createElement("span");
    span.className = "line " + l.stream;
    var t = document.createElement("time");
    t.textContent = clock(l.time);
    span.appendChild(t);
    span.appendChild(document.createTextNode(" "));
    if (withServer) {
      var b = document.createElement("b");
      b.textContent = l.server;
      span.appendChild(b);
      span.appendChild(document.createTextNode(" "));
    }
    span.appendChild(document.createTextNode(l.line + "\n"));
    return span;
  }
  function groupFor(server) {
    var found = null;
    byServer.querySelectorAll("details").forEach(function (d) {
      if (d.dataset.server === server) found = d;
    });
    if (found) return found.querySelector("pre");
    var d = document.createElement("details");
    d.open = true;
    d.dataset.server = server;
    var s = document.createElement("summary");
    s.textContent = server;
    var pre = document.createElement("pre");
    pre.className = "log";
    d.appendChild(s);
    d.appendChild(pre);
    byServer.appendChild(d);
    return pre;
  }
  function follow(pre) {
    var atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
    return function () { if (atEnd) pre.scrollTop = pre.scrollHeight; };
  }
  // The page keeps the newest lines only (the whole log stays in the API).
  var MAX_LINES = 20000;
  function trim(pre) {
    while (pre.childNodes.length > MAX_LINES) pre.removeChild(pre.firstChild);
  }
  var live = document.getElementById("live");
  var src = new EventSource("/api/v1/executions/" + encodeURIComponent(id) + "/events?after=" + encodeURIComponent(summary.dataset.after));
  src.addEventListener("line", function (e) {
    var l = JSON.parse(e.data);
    var pre = groupFor(l.server);
    var f1 = follow(pre), f2 = follow(merged);
    pre.appendChild(line(l, false));
    merged.appendChild(line(l, true));
    trim(pre); trim(merged);
    f1(); f2();
  });
  src.addEventListener("progress", function (e) {
    var p = JSON.parse(e.data);
    var bar = document.getElementById("progress");
    bar.max = p.total; bar.value = p.done;
    var pct = p.total ? Math.floor(100 * p.done / p.total) : 100;
    document.getElementById("progress-text").textContent = pct + "% " + p.done + "/" + p.total;
  });
  src.addEventListener("end", function (e) {
    var s = JSON.parse(e.data);
    src.close();
    live.textContent = "";
    var st = document.getElementById("status");
    st.textContent = s.label || s.status;
    st.className = "status " + s.status;
    // The servers' table, the archive and the buttons are final now: show them.
    setTimeout(function () { window.location.reload(); }, 300);
  });
  src.onerror = function () { live.textContent = "reconnecting…"; };
  src.onopen = function () { live.textContent = "following live"; };
})();
