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
    span.className = "line " + (l.stream === "stderr" ? "stderr" : "stdout");
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
  var groups = new Map();
  byServer.querySelectorAll("details").forEach(function (d) {
    groups.set(d.dataset.server, d.querySelector("pre"));
  });
  function groupFor(server) {
    var found = groups.get(server);
    if (found) return found;
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
    groups.set(server, pre);
    return pre;
  }
  // Lines are queued and added once per frame, in one fragment per view, with one
  // layout read per view: a run writing thousands of lines a second stays fluid.
  var MAX_LINES = 20000;
  var queue = [];
  var scheduled = false;
  function atEnd(pre) { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; }
  function trim(pre) {
    var extra = pre.childNodes.length - MAX_LINES;
    if (extra <= 0) return;
    var range = document.createRange();
    range.setStartBefore(pre.firstChild);
    range.setEndAfter(pre.childNodes[extra - 1]);
    range.deleteContents();
  }
  function flush() {
    scheduled = false;
    var lines = queue;
    queue = [];
    var byPre = new Map();
    var mergedFrag = document.createDocumentFragment();
    lines.forEach(function (l) {
      var pre = groupFor(l.server);
      if (!byPre.has(pre)) byPre.set(pre, document.createDocumentFragment());
      byPre.get(pre).appendChild(line(l, false));
      mergedFrag.appendChild(line(l, true));
    });
    var follow = [];
    byPre.forEach(function (frag, pre) { follow.push([pre, atEnd(pre), frag]); });
    var followMerged = atEnd(merged);
    follow.forEach(function (f) { f[0].appendChild(f[2]); trim(f[0]); });
    merged.appendChild(mergedFrag);
    trim(merged);
    follow.forEach(function (f) { if (f[1]) f[0].scrollTop = f[0].scrollHeight; });
    if (followMerged) merged.scrollTop = merged.scrollHeight;
  }
  var live = document.getElementById("live");
  var src = new EventSource("/api/v1/executions/" + encodeURIComponent(id) + "/events?after=" + encodeURIComponent(summary.dataset.after));
  src.addEventListener("lines", function (e) {
    Array.prototype.push.apply(queue, JSON.parse(e.data));
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  });
  src.addEventListener("progress", function (e) {
    var p = JSON.parse(e.data);
    var bar = document.getElementById("progress");
    if (!bar) return;
    bar.max = p.total; bar.value = p.done;
    var pct = p.total ? Math.floor(100 * p.done / p.total) : 100;
    document.getElementById("progress-text").textContent = pct + "% " + p.done + "/" + p.total;
  });
  src.addEventListener("end", function (e) {
    flush();
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
