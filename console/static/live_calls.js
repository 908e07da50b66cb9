// The live-calls page: every call in progress with its state and flags; listen, coach or join
// the conversation on any of them, and switch between. Rows are updated in place, so focus and
// the keyboard's place survive each refresh. Plain JavaScript, no build.
(function () {
  "use strict";

  var EVERY_MS = 3000;
  var $ = function (id) { return document.getElementById(id); };
  var root = $("live-calls");
  if (!root) return;
  var labels = {};
  $("mode-labels").content.querySelectorAll("[data-mode]").forEach(function (span) {
    labels[span.dataset.mode] = span.textContent;
  });
  var modes = root.dataset.modes.split(",");
  var rows = {}; // sid -> row

  var request = window.callflowApi.request;


  function say(text, kind) {
    var message = $("live-message");
    message.textContent = text;
    message.className = "notice " + (kind || "info");
    message.hidden = !text;
  }

  function flags(call) {
    var found = [];
    if (call.help_requested) found.push("Help requested");
    else if (call.help_answered) found.push("Help answered");
    if (call.on_register) found.push("On the register");
    if (call.warned) found.push("Warned");
    return found.join(", ") || "None";
  }

  function choose(call, mode) {
    var method = rows[call.call_sid].dataset.myMode ? "PUT" : "POST";
    request(method, "/api/calls/" + encodeURIComponent(call.call_sid) + "/supervision",
      { mode: mode }).then(function (answer) {
      if (!answer.ok) {
        say("Not done: " + (answer.data.error || "something went wrong") + ".", "error");
        return;
      }
      rows[call.call_sid].dataset.myMode = answer.data.mode;
      setPressed(rows[call.call_sid], answer.data.mode);
      say(answer.data.text + (method === "POST" ? ". Your phone rings: answer it to join." : "."), "ok");
    });
  }

  function setPressed(row, mode) {
    row.querySelectorAll("button[data-mode]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    });
  }

  function makeRow(call) {
    var row = document.createElement("tr");
    row.dataset.callSid = call.call_sid;
    ["caller", "started", "state", "agent", "flags", "supervisors"].forEach(function (name, i) {
      var cell = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) cell.scope = "row";
      cell.className = "live-" + name;
      row.appendChild(cell);
    });
    var actions = document.createElement("td");
    var group = document.createElement("div");
    group.className = "actions";
    group.setAttribute("role", "group");
    actions.appendChild(group);
    modes.forEach(function (mode) {
      var b = document.createElement("button");
      b.type = "button";
      b.dataset.mode = mode;
      b.textContent = labels[mode];
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", function () { choose(row.call, mode); });
      group.appendChild(b);
    });
    row.appendChild(actions);
    $("live-rows").appendChild(row);
    return row;
  }

  function fill(row, call) {
    row.call = call;
    var text = {
      caller: call.caller, started: call.started_at_text, state: call.state_text,
      agent: call.agent || "Nobody yet", flags: flags(call),
      supervisors: call.supervisors.join("; ") || "None",
    };
    Object.keys(text).forEach(function (name) {
      var cell = row.querySelector(".live-" + name);
      if (cell.textContent !== text[name]) cell.textContent = text[name];
    });
    var group = row.querySelector('[role="group"]');
    group.setAttribute("aria-label", "Listen in on the call with " + call.caller);
    row.dataset.myMode = call.my_mode || "";
    setPressed(row, call.my_mode);
    row.querySelectorAll("button[data-mode]").forEach(function (b) {
      b.disabled = !call.joinable;
    });
  }

  function poll() {
    request("GET", "/api/calls/live").then(function (answer) {
      if (!answer.ok) {
        if (answer.status === 401) say("You are signed out. Sign in again to see live calls.", "error");
        return;
      }
      var calls = answer.data.calls || [];
      var seen = {};
      calls.forEach(function (call) {
        seen[call.call_sid] = true;
        var row = rows[call.call_sid] || (rows[call.call_sid] = makeRow(call));
        fill(row, call);
      });
      Object.keys(rows).forEach(function (sid) {
        if (seen[sid]) return;
        var focused = rows[sid].contains(document.activeElement);
        rows[sid].remove();
        delete rows[sid];
        if (focused) $("main").focus(); // its call ended: keep the keyboard on the page
      });
      $("live-table").hidden = calls.length === 0;
      $("live-none").hidden = calls.length > 0;
    });
  }
  poll();
  window.setInterval(poll, EVERY_MS);
})();
