// The phone simulator's page: call the centre, read what Twilio would say, press keys, hang up.
(function () {
  "use strict";

  var POLL_MS = 700;
  var root = document.getElementById("simulator");
  if (!root) return;
  var $ = function (id) { return document.getElementById(id); };
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var sim = null; // the simulated call's id
  var view = null;
  var timer = null;

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    }, function () { return { ok: false, status: 0, data: { error: "callflow could not be reached" } }; });
  }

  function show(element, text) {
    element.textContent = text || "";
    element.hidden = !text;
  }

  function lineState(v) {
    if (!v) return "No call.";
    if (v.over) return "Call ended.";
    if (v.status === "placing") return "Calling\u2026";
    if (v.connected) return "Connected to a member of staff.";
    if (v.on_hold) return "On hold, waiting for a member of staff.";
    if (v.waiting_for === "gather") return "Twilio is waiting for you to press a key.";
    if (v.waiting_for === "record") return "Recording your message.";
    if (v.waiting_for === "dial") return "Ringing another line\u2026";
    return "In the call (" + v.status + ").";
  }

  function renderTranscript(entries) {
    var list = $("transcript");
    list.textContent = "";
    entries.forEach(function (entry) {
      var li = document.createElement("li");
      li.className = entry.kind;
      if (entry.note) {
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = entry.note;
        li.appendChild(kind);
      }
      li.appendChild(document.createTextNode(entry.text));
      list.appendChild(li);
    });
    list.scrollTop = list.scrollHeight;
  }

  function renderList(list, items) {
    list.textContent = "";
    items.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
  }

  function render() {
    var v = view;
    $("line-state").textContent = lineState(v);
    var live = v && !v.over && v.status !== "placing";
    $("keypad-area").hidden = !(live && v.waiting_for === "gather");
    $("record-area").hidden = !(live && v.waiting_for === "record");
    $("dial-area").hidden = !(live && v.waiting_for === "dial" && !v.on_hold && !v.connected);
    $("hang-up").hidden = !(v && !v.over);
    $("call-button").disabled = !!(v && !v.over);
    if (v && v.gather_due && v.waiting_for === "gather") {
      var left = Math.max(0, Math.round(v.gather_due - Date.now() / 1000));
      $("gather-hint").textContent = "Press a key (Twilio stops waiting in " + left + " s).";
    }
    renderTranscript(v ? v.transcript || [] : []);
    show($("errors"), v && v.errors && v.errors.length ? v.errors[v.errors.length - 1] : "");
    renderList($("rest-log"), (v && v.rest || []).map(function (r) {
      return r.method + " " + r.path + " \u2192 " + r.outcome;
    }));
    renderList($("problems"), (v && v.problems || []).map(function (p) { return "Problem: " + p; }));
  }

  function poll() {
    if (!sim) return;
    fetch("/simulator/calls/" + sim, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) { view = data; render(); }
        if (view && view.over) { timer = null; return; }
        timer = window.setTimeout(poll, POLL_MS);
      }, function () { timer = window.setTimeout(poll, POLL_MS * 3); });
  }

  function act(action, body) {
    if (!sim) return;
    post("/simulator/calls/" + sim + "/" + action, body).then(function (answer) {
      if (!answer.ok) show($("errors"), answer.data.error || "That did not work (" + answer.status + ").");
      if (!timer) poll();
    });
  }

  $("dial-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var chosen = $("dial-form").querySelector('input[name="caller"]:checked');
    var from = chosen ? chosen.value : "other";
    if (from === "other") from = $("other-number").value;
    show($("dial-message"), "");
    post("/simulator/calls", { from: from }).then(function (answer) {
      if (!answer.ok) {
        show($("dial-message"), answer.data.error || "The call could not be placed.");
        return;
      }
      sim = answer.data.sim;
      view = { status: "placing", transcript: [], over: false };
      render();
      if (timer) window.clearTimeout(timer);
      poll();
    });
  });
  $("other-number").addEventListener("focus", function () { $("caller-other").checked = true; });
  root.querySelectorAll("[data-key]").forEach(function (button) {
    button.addEventListener("click", function () { act("press", { digits: button.dataset.key }); });
  });
  root.querySelectorAll("[data-dial]").forEach(function (button) {
    button.addEventListener("click", function () { act("dial", { outcome: button.dataset.dial }); });
  });
  $("silence").addEventListener("click", function () { act("silence"); });
  $("record-silence").addEventListener("click", function () { act("silence"); });
  $("leave-message").addEventListener("click", function () { act("message"); });
  $("hang-up").addEventListener("click", function () { act("hangup"); });
  document.addEventListener("keydown", function (event) {
    // The keyboard is the keypad while Twilio waits for keys.
    if ($("keypad-area").hidden || /INPUT|TEXTAREA|SELECT/.test(event.target.tagName)) return;
    if (/^[0-9*#]$/.test(event.key)) act("press", { digits: event.key });
  });
})();
