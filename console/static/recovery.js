// Time to recover after an abusive call: the agent's countdown (console.js hands it GET
// /api/me's `recovery`), and, for supervisors, who is recovering. Plain JavaScript, no build.
(function () {
  "use strict";

  var STAFF_EVERY_MS = 5000;
  var $ = function (id) { return document.getElementById(id); };
  if (!$("recovery")) return;

  var endsAt = 0; // when the shown recovery ends, by this browser's clock
  var timer = null;
  var minutesSaid = null; // the last whole minutes left announced to screen readers
  var whenOver = null;

  // As callflow/recovery.py time_left_text writes it: "4 minutes 5 seconds", "45 seconds".
  function timeLeftText(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    var parts = [];
    if (minutes) parts.push(minutes + (minutes === 1 ? " minute" : " minutes"));
    if (rest || !minutes) parts.push(rest + (rest === 1 ? " second" : " seconds"));
    return parts.join(" ");
  }

  // Screen readers hear the start, each whole minute and the end: not every second.
  function announce(text) { $("recovery-announcer").textContent = text; }

  function countDown() {
    var left = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
    $("recovery-countdown").textContent = timeLeftText(left) + " left";
    var minutes = Math.ceil(left / 60);
    if (left > 0 && minutes !== minutesSaid) {
      if (minutesSaid !== null) announce(timeLeftText(minutes * 60) + " left to recover.");
      minutesSaid = minutes;
    }
    if (left === 0) {
      window.clearInterval(timer);
      timer = null;
      if (whenOver) whenOver(); // the server says whether it is over, and makes them available
    }
  }

  // Show a recovery ({until_text, seconds_left, early_return}), or none; `over` is called when
  // the countdown reaches zero.
  function show(recovery, over) {
    var section = $("recovery");
    whenOver = over || null;
    if (!recovery) {
      if (!section.hidden) announce("Your time to recover is over. You can take calls again.");
      section.hidden = true;
      if (timer) window.clearInterval(timer);
      timer = null;
      minutesSaid = null;
      return;
    }
    if (section.hidden) {
      announce("You are taking time to recover after an abusive call. You can take calls " +
        "again at " + recovery.until_text + ".");
    }
    section.hidden = false;
    endsAt = Date.now() + recovery.seconds_left * 1000;
    $("recovery-until").textContent = recovery.until_text;
    $("recovery-return").hidden = !recovery.early_return;
    countDown();
    if (!timer && recovery.seconds_left > 0) timer = window.setInterval(countDown, 1000);
  }

  window.callflowRecovery = { show: show };

  // -- supervisors: who is recovering ------------------------------------------------------

  var list = $("recovering-list");
  if (!list) return;
  function pollStaff() {
    fetch("/api/staff/recovering", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        list.textContent = "";
        data.recovering.forEach(function (member) {
          var item = document.createElement("li");
          item.textContent = member.name + ": back at " + member.until_text;
          list.appendChild(item);
        });
        $("recovering-none").hidden = data.recovering.length > 0;
      }, function () { /* tried again on the next round */ });
  }
  pollStaff();
  window.setInterval(pollStaff, STAFF_EVERY_MS);
})();
