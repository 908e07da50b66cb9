// "I need help" on the agent console (a button and a keyboard shortcut), and, for supervisors,
// the alerts it raises: shown (role=alert), sounded (a short Web Audio tone), answered, and
// listen / coach / join the conversation from the alert. Plain JavaScript, no build.
(function () {
  "use strict";

  var ALERTS_EVERY_MS = 2000;
  var $ = function (id) { return document.getElementById(id); };

  var request = window.callflowApi.request;


  function refusal(answer) {
    var said = (answer.data && answer.data.error) || "";
    if (answer.status === 0) return "Could not reach callflow. Check your connection and try again.";
    if (answer.status === 401) return "You are signed out, so nothing was done. Sign in again.";
    return "Not done: " + (said || "something went wrong") + ".";
  }

  function say(element, text, kind) {
    element.textContent = text;
    element.className = "notice " + (kind || "info");
    element.hidden = !text;
  }

  // -- the agent: ask for help ---------------------------------------------------------------

  var helpButton = $("need-help");
  function askForHelp() {
    var sid = ($("call") && $("call").dataset.callSid) || "";
    if (!helpButton || helpButton.disabled || !sid || $("actions").hidden) return;
    helpButton.disabled = true;
    request("POST", "/api/calls/" + encodeURIComponent(sid) + "/help").then(function (answer) {
      helpButton.disabled = false;
      if (answer.ok) {
        say($("help-message"), answer.data.repeat
          ? "Supervisors have already been alerted. Stay on the line; help is coming."
          : "Supervisors have been alerted. Stay on the line; help is coming.", "ok");
        waitForAnswer(sid);
      } else {
        say($("help-message"), refusal(answer), "error");
      }
    });
  }
  // Until a supervisor answers (or the call moves on), then say who is coming.
  var waiting = null;
  function waitForAnswer(sid) {
    if (waiting) window.clearInterval(waiting);
    waiting = window.setInterval(function () {
      if (($("call").dataset.callSid || "") !== sid) { window.clearInterval(waiting); waiting = null; return; }
      request("GET", "/api/calls/" + encodeURIComponent(sid) + "/help").then(function (answer) {
        if (!answer.ok || answer.data.help !== "answered") return;
        window.clearInterval(waiting);
        waiting = null;
        say($("help-message"), (answer.data.answered_by || "A supervisor") +
          " answered your call for help and is on the way.", "ok");
      });
    }, 2000);
  }

  if (helpButton) {
    helpButton.addEventListener("click", askForHelp);
    // Alt+Shift+H (aria-keyshortcuts on the button): by the key's place, so it works whatever
    // character the layout gives it (on a Mac, Option+Shift+H types a letter).
    document.addEventListener("keydown", function (event) {
      if (event.altKey && event.shiftKey && !event.ctrlKey && !event.metaKey &&
          event.code === "KeyH") {
        event.preventDefault();
        askForHelp();
      }
    });
  }

  // -- supervisors: the alerts ---------------------------------------------------------------

  var list = $("help-alerts");
  if (!list) return;
  var modes = JSON.parse(list.dataset.modes || "[]"); // [[value, label], ...]
  var shown = {}; // sid -> its alert element
  var audio = null;

  // Browsers start audio only after a click or key press on the page: make it ready then.
  function readyAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume();
  }
  document.addEventListener("click", readyAudio);
  document.addEventListener("keydown", readyAudio);

  // Two short rising beeps: no audio file, nothing to download.
  function tone() {
    if (!audio || audio.state !== "running") return;
    [0, 0.25].forEach(function (offset, i) {
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      var start = audio.currentTime + offset;
      oscillator.type = "sine";
      oscillator.frequency.value = i ? 990 : 660;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start(start);
      oscillator.stop(start + 0.22);
    });
    list.dataset.toned = String(Number(list.dataset.toned || "0") + 1);
  }

  function button(text, handler) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.addEventListener("click", handler);
    return b;
  }

  // An alert's own message keeps its class, so the alert can find it again.
  function tell(item, text, kind) {
    var message = item.querySelector(".help-result");
    say(message, text, kind);
    message.classList.add("help-result");
  }

  function act(item, sid, method, url, body) {
    return request(method, url, body).then(function (answer) {
      if (!answer.ok) { tell(item, refusal(answer), "error"); return null; }
      return answer.data;
    });
  }

  function setPressed(item, mode) {
    item.querySelectorAll("[data-mode]").forEach(function (other) {
      other.setAttribute("aria-pressed", String(other.dataset.mode === mode));
    });
  }

  function addAlert(alert) {
    var sid = alert.call_sid;
    var item = document.createElement("li");
    item.className = "card help-alert";
    item.dataset.callSid = sid;
    var text = document.createElement("p");
    text.className = "help-text";
    text.textContent = alert.text + " Asked at " + alert.raised_at_text + ".";
    item.appendChild(text);
    var group = document.createElement("div");
    group.className = "actions";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Help " + alert.agent);
    var message = document.createElement("p");
    message.className = "help-result notice";
    message.setAttribute("role", "status");
    message.hidden = true;
    group.appendChild(button("I\u2019ll help", function () {
      act(item, sid, "POST", "/api/calls/" + encodeURIComponent(sid) + "/help/answer").then(function (data) {
        if (!data) return;
        tell(item, data.answered ? "You answered: you are the supervisor helping " + alert.agent + "."
          : data.answered_by + " answered this first.", data.answered ? "ok" : "info");
      });
    }));
    modes.forEach(function (mode) {
      var b = button(mode[1], function () {
        var pressed = group.querySelector('[aria-pressed="true"]');
        var method = pressed ? "PUT" : "POST";
        act(item, sid, method, "/api/calls/" + encodeURIComponent(sid) + "/supervision",
          { mode: mode[0] }).then(function (data) {
          if (!data) return;
          setPressed(item, data.mode);
          tell(item, data.text + (method === "POST" ? ". Your phone rings: answer it to join." : "."), "ok");
        });
      });
      b.dataset.mode = mode[0];
      b.setAttribute("aria-pressed", "false");
      group.appendChild(b);
    });
    item.appendChild(group);
    item.appendChild(message);
    list.appendChild(item);
    shown[sid] = item;
    if (alert.answered_by_you) tell(item, "You answered this call for help.", "ok");
  }

  function poll() {
    request("GET", "/api/help/alerts").then(function (answer) {
      if (!answer.ok) return;
      var alerts = answer.data.alerts || [];
      var fresh = false;
      var seen = {};
      var sounded = [];
      alerts.forEach(function (alert) {
        seen[alert.call_sid] = true;
        if (!shown[alert.call_sid]) {
          addAlert(alert);
          if (!alert.answered_by_you) { fresh = true; sounded.push(alert.text); }
        }
        if (alert.my_mode) setPressed(shown[alert.call_sid], alert.my_mode);
      });
      // The server lists an alert until someone else answers it or the call ends.
      Object.keys(shown).forEach(function (sid) {
        if (seen[sid]) return;
        var focused = shown[sid].contains(document.activeElement);
        shown[sid].remove();
        delete shown[sid];
        if (focused) $("help-requests-title").focus(); // keep the keyboard's place nearby
      });
      $("help-none").hidden = Object.keys(shown).length > 0;
      if (fresh) {
        $("help-announcer").textContent = sounded.join(" ");
        tone();
      }
    });
  }
  poll();
  window.setInterval(poll, ALERTS_EVERY_MS);
})();
