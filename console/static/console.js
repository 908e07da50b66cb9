// The agent console: availability, the live call, warn / end / report / propose, and the phone.
// Plain JavaScript with no build step; the page's CSP allows scripts from this origin only.
(function () {
  "use strict";

  // The call is fetched at once when the phone rings and when the agent answers, so the screen
  // pop (the flag, arrangements and needs) is on screen as the Answer button appears; the poll
  // is the safety net for everything else. ?poll=<ms> lengthens it (tests and benchmarks).
  var POLL_MS = 700;
  // The simulator's phone rings by being read (a Twilio phone is told at once): often enough
  // that a ring shows about as soon as it would with Twilio. Only the simulator reads it.
  var PHONE_POLL_MS = 250;
  var ME_EVERY = 4; // availability is read on every fourth poll
  var RING_WAIT_MS = 300; // a ring waits at most this long for its call's details
  var ANSWER_FOLLOW_MS = 150; // after answering, the call is read this often until connected
  var ANSWER_FOLLOW_TRIES = 20;
  var root = document.getElementById("console");
  if (!root) return;
  var phoneKind = root.dataset.phone; // "simulator", "twilio" or "none"
  // The live call's states, from the core's one list (callflow/call_state.py).
  var STATE = JSON.parse(root.dataset.callStates);
  var query = new URLSearchParams(window.location.search);
  var pinned = query.get("call") || "";
  var pollMs = Math.min(Math.max(parseInt(query.get("poll"), 10) || POLL_MS, POLL_MS), 3600000);

  var $ = function (id) { return document.getElementById(id); };
  var signedOut = false;
  var call = null; // the live call as GET /api/calls/current describes it
  var lastCall = null; // the last call seen, for reports after it ended
  var availability = "away";
  var ringing = null; // {kind: "simulator", sid} or {kind: "twilio", call}
  var onPhone = null; // the connected phone leg, same shape
  var ticks = 0;
  var acted = {}; // sid -> {warned, warnings, ended}: what this page did, until polls catch up
  var warningHeard = {}; // sid -> the warning's state last shown (issue 14)

  var wrapUpSid = ""; // the call ended in one click whose reason is still owed

  // -- talking to the server -------------------------------------------------------------

  var request = window.callflowApi.request;
  window.callflowApi.onSignedOut(showSignedOut);

  // A refusal as the agent should read it: what happened, in words, and the server's answer.
  function explain(answer) {
    var said = (answer.data && answer.data.error) || "";
    if (answer.status === 0) return "Could not reach callflow. Check your connection and try again.";
    if (answer.status === 401) return "You are signed out, so nothing was done. Sign in again.";
    if (answer.status === 403) {
      if (/CSRF/i.test(said)) return "This page is out of date. Reload it and try again.";
      return "Not allowed: " + (said || "you may not act on this call") + ".";
    }
    if (answer.status === 404) return "That call is not known" + (said ? ": " + said : "") + ".";
    if (answer.status === 409 && said === root.dataset.notWarned) {
      return "Refused: give a warning before ending the call (policy 4.5). Without a warning " +
        "only \u201cthreat or violence\u201d ends a call.";
    }
    if (answer.status === 409) return "Not done: " + (said || "conflict") + ".";
    if (answer.status === 422) return "Please check the form: " + (said || "something is missing") + ".";
    if (answer.status === 502 || answer.status === 503) {
      return (said || "Twilio did not accept the request") + ". Nothing was done; try again.";
    }
    return "Something went wrong" + (said ? ": " + said : "") + ". Try again, or tell a supervisor.";
  }

  function say(element, text, kind) {
    element.textContent = text;
    element.className = "notice " + (kind || "info");
    element.hidden = !text;
  }

  // Screen readers hear a call arrive (the call card is not itself a live region); each
  // action's result is announced by the role=alert/status message that shows it.
  var announced = "";
  function announceCall(key, personOfInterest) {
    if (key === announced) return;
    announced = key;
    $("call-announcer").textContent = "Incoming call" +
      (personOfInterest ? " from a person of interest" : "") + ". Answer to speak to the caller.";
  }

  function showSignedOut() {
    if (signedOut) return;
    signedOut = true;
    $("signed-out").hidden = false;
    // The phone's own buttons stay: the Voice SDK hangs up without asking callflow.
    document.querySelectorAll("#console button").forEach(function (b) {
      if (!b.closest("#phone")) b.disabled = true;
    });
  }

  // -- availability ----------------------------------------------------------------------

  var AVAILABILITY_TEXT = {
    available: "Available", away: "Away", busy: "Busy \u2014 on a call",
    "wrap-up": "Wrap-up \u2014 save the reason for your last call",
    recovering: "Recovering \u2014 no calls for a few minutes",
  };

  // Time to recover after an abusive call: the countdown is recovery.js's.
  function showRecovery(me) {
    if (window.callflowRecovery) window.callflowRecovery.show(me.recovery || null, readMe);
  }

  function renderAvailability() {
    var pill = $("availability");
    var onCall = call && !call.unknown && call.state !== STATE.ENDED && !call.ended_by_agent;
    var shown = onCall && availability !== "away" ? "busy" : availability;
    pill.textContent = AVAILABILITY_TEXT[shown] || shown;
    pill.className = "pill " + shown;
    document.querySelectorAll("[data-availability]").forEach(function (button) {
      var chosen = button.dataset.availability === availability ||
        (availability === "busy" && button.dataset.availability === "available");
      button.setAttribute("aria-pressed", chosen ? "true" : "false");
    });
  }

  function setAvailability(choice) {
    say($("availability-message"), "");
    request("PUT", "/api/me/availability", { availability: choice }).then(function (answer) {
      if (answer.ok) {
        availability = answer.data.availability || choice;
        renderAvailability();
        showRecovery(answer.data);
      } else {
        say($("availability-message"), explain(answer), "error");
      }
    });
  }

  function readMe() {
    return request("GET", "/api/me").then(function (answer) {
      if (answer.ok && answer.data.availability) {
        availability = answer.data.availability;
        if (answer.data.csrf_token) window.callflowApi.setCsrfToken(answer.data.csrf_token);
        renderAvailability();
        showWrapUp(answer.data.wrap_up ? answer.data.wrap_up.call_sid : "");
        showRecovery(answer.data);
      }
    });
  }

  // -- the live call ---------------------------------------------------------------------

  // The API sends number_text, formatted as everywhere else (callflow/phone.py display()).
  function formatNumber(number, text) {
    if (text) return text;
    if (!number || number === "withheld") return "Withheld number";
    var m = /^\+44(\d{4})(\d{6})$/.exec(number);
    return m ? "0" + m[1] + " " + m[2] : number;
  }

  function stateText(c) {
    if (c.ended_by_agent) return "Ended by you";
    if (c.state === STATE.RINGING) return "Ringing you";
    if (c.state === STATE.WAITING) return "Caller waiting";
    if (c.state === STATE.CONNECTED) {
      if (!c.started_at_text) return "Connected";
      return "Connected \u00b7 call began " + (c.started_at_text || "");
    }
    if (c.went_to === "fallback") return "Went to your fallback contact";
    if (c.went_to === "voicemail") return "Went to voicemail";
    if (c.state === STATE.ENDED) return "Call ended";
    return c.state || "";
  }

  function fillList(list, items) {
    list.textContent = "";
    items.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
  }

  // Issue 13: the person's needs, and who is calling when it is one of their representatives.
  function renderNeedsAndRepresentative(poi) {
    var needs = (poi && poi.needs) || [];
    fillList($("poi-needs-list"), needs);
    $("poi-needs").hidden = !needs.length;
    $("poi-needs-label").hidden = !needs.length;
    var rep = poi && poi.representative;
    var line = $("poi-representative");
    line.hidden = !rep;
    if (!rep) { line.textContent = ""; return; }
    line.textContent = rep.name + " (" + rep.relationship + "), " + rep.of + ". " + (rep.covered
      ? "The restriction covers them: follow the arrangements below."
      : "The restriction does not cover them: deal with their call as normal.");
  }

  function renderPersonOfInterest(poi) {
    $("poi").hidden = !poi;
    $("poi-facts").hidden = !poi;
    renderNeedsAndRepresentative(poi);
    if (!poi) return;
    fillList($("poi-categories"), (poi.categories || []).map(function (c) { return c.label || c.code; }));
    var a = poi.arrangements || {};
    var arrangements = [];
    if (a.written_only) arrangements.push("Written contact only \u2014 do not deal with the matter by phone.");
    if (a.call_windows) arrangements.push("Calls only " + a.call_windows + ".");
    if (a.designated_contact) arrangements.push("Designated contact: " + a.designated_contact + ".");
    if (a.visits_by_appointment) arrangements.push("Visits by appointment only.");
    if (a.call_limits) arrangements.push("Call limits: " + a.call_limits + " (callflow warns the caller and ends the call at the agreed length).");
    if (!arrangements.length) arrangements.push("None recorded.");
    fillList($("poi-arrangements"), arrangements);

    var closed = $("poi-closed");
    closed.textContent = "";
    (poi.closed_issues || []).forEach(function (issue) {
      var box = document.createElement("div");
      box.className = "closed-issue";
      box.textContent = [issue.reference, issue.summary].filter(Boolean).join(": ");
      var rule = document.createElement("span");
      rule.className = "rule";
      rule.textContent = "Closed under 4.7 \u2014 do not reopen unless new information.";
      box.appendChild(rule);
      closed.appendChild(box);
    });
    var hasClosed = (poi.closed_issues || []).length > 0;
    closed.hidden = !hasClosed;
    $("poi-closed-label").hidden = !hasClosed;
    $("poi-notes").textContent = poi.staff_notes || "";
    $("poi-notes").hidden = !poi.staff_notes;
    $("poi-notes-label").hidden = !poi.staff_notes;
    $("poi-reason").textContent = poi.reason || "";
    $("poi-reason").hidden = !poi.reason;
    $("poi-reason-label").hidden = !poi.reason;
  }

  function renderCall() {
    var body = $("call-body");
    var shown = call || null;
    $("call-empty").hidden = !!shown;
    body.hidden = !shown;
    $("call").dataset.callSid = shown ? shown.call_sid : "";
    if (!shown) return;
    if (shown.unknown) {
      $("call-number").textContent = "Call " + shown.call_sid.slice(0, 12) + "\u2026";
      $("call-customer").textContent = "";
      $("call-state").textContent = "Details not available";
      ["lookup-failed", "abuse-warning", "poi", "poi-facts", "ring-hint", "ended-note", "end-hint", "warned"].forEach(
        function (id) { $(id).hidden = true; });
      $("actions").hidden = false;
      $("warn").disabled = $("end").disabled = $("end-threat").disabled = signedOut;
      return;
    }
    $("call-number").textContent = formatNumber(shown.number, shown.number_text);
    var customer = shown.customer;
    $("call-customer").textContent = customer
      ? [customer.name, customer.reference].filter(Boolean).join(" \u00b7 ")
      : (shown.withheld ? "" : "Not on the register");
    $("call-state").textContent = stateText(shown);
    $("lookup-failed").hidden = !shown.register_check_failed;
    renderPersonOfInterest(shown.person_of_interest);
    var abuse = shown.last_ended_for_abuse; // policy 5.2: even if not on the register
    $("abuse-warning").hidden = !abuse;
    $("abuse-warning").textContent = abuse ? "This number\u2019s last call was ended for " +
      abuse.reason_text + " on " + abuse.when + "." : "";

    var over = shown.state === STATE.ENDED || !!shown.ended_by_agent;
    var connected = shown.state === STATE.CONNECTED && !over;
    $("ring-hint").hidden = over || shown.state !== STATE.RINGING;
    $("actions").hidden = !connected;
    $("warn").disabled = signedOut;
    // Issue 14: End call waits until the caller has heard the warning (or it failed: warn again).
    var unheard = shown.warning_state === "playing" || shown.warning_state === "failed";
    var heardBefore = warningHeard[shown.call_sid];
    if (heardBefore === "playing" && shown.warning_state === "played") {
      say($("call-message"), "Warning played to the caller and logged. End call is now available.", "ok");
    } else if (heardBefore === "playing" && shown.warning_state === "failed") {
      say($("call-message"), "The warning could not be played to the caller. Give the warning again.", "error");
    }
    warningHeard[shown.call_sid] = shown.warning_state;
    $("end").disabled = signedOut || !shown.warned || unheard;
    $("end-threat").disabled = signedOut;
    var warned = $("warned");
    warned.hidden = !shown.warned;
    warned.textContent = (shown.warnings > 1 ? "Warned " + shown.warnings + " times" : "Warned") +
      (shown.warning_state_text ? ": " + shown.warning_state_text.charAt(0).toLowerCase() +
        shown.warning_state_text.slice(1) + "." : "");
    $("end-hint").hidden = !connected || !!shown.warned;
    $("ended-note").hidden = !over || !!shown.went_to; // passed on: not ended, nothing to report
    renderAvailability();
  }

  function pollCall() {
    var url = "/api/calls/current" + (pinned ? "?call=" + encodeURIComponent(pinned) : "");
    return request("GET", url).then(function (answer) {
      if (!answer.ok) {
        if (answer.status !== 401 && pinned && (!call || call.unknown)) {
          // Opened for one call (a supervisor stepping in): its details are refused or gone,
          // but the actions stay, and the server decides whether they may be done.
          var first = !call;
          call = { call_sid: pinned, unknown: true, state: STATE.CONNECTED, warned: false };
          if (first) say($("call-message"), explain(answer), "error");
          renderCall();
        }
        return;
      }
      var next = answer.data.call || null;
      var passedOn = answer.data.passed_on || null;
      if (!next && call && !pinned) {
        // Keep the call that just ended on screen (what was done, reports), until the next one.
        next = call;
        next.state = STATE.ENDED;
        if (passedOn && passedOn.call_sid === next.call_sid) next.went_to = passedOn.went_to;
      }
      showPassedOn(!next && passedOn);
      var mine = next && acted[next.call_sid];
      if (mine) {
        next.warned = next.warned || mine.warned;
        next.warnings = Math.max(next.warnings || 0, mine.warnings || 0);
        next.ended_by_agent = next.ended_by_agent || mine.ended;
      }
      if (next && (!call || call.call_sid !== next.call_sid)) say($("call-message"), "");
      var arrived = next && next.state === STATE.RINGING && (!call || call.call_sid !== next.call_sid);
      call = next;
      if (arrived) announceCall(call.call_sid, call.person_of_interest);
      if (call) remember(call);
      renderCall();
    });
  }

  // A read that runs one at a time, so that an older answer never overwrites a newer one; a
  // read asked for meanwhile runs once the current one is back.
  function oneAtATime(read) {
    var running = null;
    var again = false;
    function run() {
      if (running) {
        again = true;
        return running;
      }
      running = read().then(function () {
        running = null;
        if (!again) return undefined;
        again = false;
        return run();
      });
      return running;
    }
    return run;
  }

  // Every read of the call goes through here.
  var refreshCall = oneAtATime(pollCall);

  // The server hears of an answer from Twilio's join webhook a moment after the click: read
  // the call again shortly until it is connected (or over), then leave it to the poll.
  function followAnswer(tries) {
    refreshCall().then(function () {
      var settled = call && (call.unknown || call.state === STATE.CONNECTED ||
        call.state === STATE.ENDED || call.ended_by_agent);
      if (!settled && tries > 1) {
        window.setTimeout(function () { followAnswer(tries - 1); }, ANSWER_FOLLOW_MS);
      }
    });
  }

  // A new ring: its call's details are read first (waiting RING_WAIT_MS at most), so that the
  // flag is on screen, and announced, by the time the Answer button is.
  function ringWithDetails() {
    var shown = false;
    var show = function () {
      if (shown) return;
      shown = true;
      renderPhone();
    };
    window.setTimeout(show, RING_WAIT_MS);
    return refreshCall().then(show);
  }

  // A call meant for this member of staff (the designated contact) that went elsewhere while
  // they were away or did not answer: say where it went, as no call was shown for it.
  function showPassedOn(passedOn) {
    var text = "";
    if (passedOn && passedOn.went_to === "fallback") {
      text = "A call for you went to your fallback contact.";
    } else if (passedOn && passedOn.went_to === "voicemail") {
      text = "A call for you went to voicemail, as you were not available.";
    }
    say($("passed-on"), text, "info");
  }

  function remember(c) {
    lastCall = { call_sid: c.call_sid, number: c.number };
    try { sessionStorage.setItem("callflow:last-call", JSON.stringify(lastCall)); } catch (ignored) { /* private mode */ }
    $("incident-about").textContent = "About the call from " + formatNumber(c.number, c.number_text) + ".";
  }

  function restoreLastCall() {
    try { lastCall = JSON.parse(sessionStorage.getItem("callflow:last-call") || "null"); } catch (ignored) { lastCall = null; }
    if (lastCall) $("incident-about").textContent = "About your last call, from " + formatNumber(lastCall.number, lastCall.number_text) + ".";
  }

  // -- warn and end ----------------------------------------------------------------------

  function warn() {
    if (!call) return;
    var button = $("warn");
    button.disabled = true;
    say($("call-message"), "Playing the warning to the caller\u2026", "info");
    request("POST", "/api/calls/" + encodeURIComponent(call.call_sid) + "/warning").then(function (answer) {
      button.disabled = signedOut;
      if (answer.ok) {
        call.warned = true;
        call.warnings = answer.data.warning || (call.warnings || 0) + 1;
        acted[call.call_sid] = { warned: true, warnings: call.warnings };
        call.warning_state = answer.data.warning_state || null;
        call.warning_state_text = null; // the next poll words it
        if (call.warning_state === "failed") {
          say($("call-message"), "The warning could not be played to the caller. Give the warning again.", "error");
        } else if (call.warning_state === "playing") {
          say($("call-message"), "Warning sent to the caller and logged. End call becomes available once it has played.", "info");
        } else {
          say($("call-message"), "Warning played to the caller and logged. End call is now available.", "ok");
        }
        renderCall();
      } else {
        say($("call-message"), explain(answer), "error");
      }
    });
  }

  // One click ends the call: a warned call hears the closing statement and its reason is
  // then given as wrap-up; threats or violence end at once and are flagged for a manager.
  function endCall(threat) {
    if (!call) return;
    var button = threat ? $("end-threat") : $("end");
    button.disabled = true;
    var sid = call.call_sid;
    request("POST", "/api/calls/" + encodeURIComponent(sid) + "/end",
      threat ? { reason: button.dataset.reason } : {}).then(function (answer) {
      button.disabled = signedOut;
      if (!answer.ok) {
        say($("call-message"), explain(answer), "error");
        return;
      }
      acted[sid] = Object.assign(acted[sid] || {}, { ended: true });
      if (call && call.call_sid === sid) call.ended_by_agent = true;
      say($("call-message"), answer.data.closing_statement
        ? "Call ended: the caller hears the closing statement."
        : "Call ended at once and flagged for a manager.", "ok");
      renderCall();
      if (answer.data.wrap_up_owed) showWrapUp(sid, true);
      readMe();
    });
  }

  // The reason for a call ended in one click: asked for until saved (the server holds back
  // the next call until then), and announced when it is first asked for.
  function showWrapUp(sid, justEnded) {
    if (sid === wrapUpSid) return;
    wrapUpSid = sid;
    var panel = $("wrap-up");
    panel.hidden = !sid;
    if (!sid) return;
    $("wrap-up-form").reset();
    say($("wrap-up-error"), "");
    $("call-announcer").textContent = (justEnded ? "Call ended. " : "") +
      "Say why you ended the call, then save, before your next call.";
    var first = panel.querySelector('input[name="reason"]');
    if (first) first.focus();
  }

  function submitWrapUp(event) {
    event.preventDefault();
    if (!wrapUpSid) return;
    var form = $("wrap-up-form");
    var chosen = form.querySelector('input[name="reason"]:checked');
    if (!chosen) {
      say($("wrap-up-error"), "Choose the reason for ending the call.", "error");
      return;
    }
    var save = $("wrap-up-save");
    save.disabled = true;
    var label = chosen.parentElement.textContent.trim();
    request("POST", "/api/calls/" + encodeURIComponent(wrapUpSid) + "/wrap-up",
      { reason: chosen.value, note: $("wrap-up-note").value }).then(function (answer) {
      save.disabled = signedOut;
      if (!answer.ok) {
        say($("wrap-up-error"), explain(answer), "error");
        return;
      }
      showWrapUp("");
      say($("call-message"), "Reason saved in the call log: " + label + ".", "ok");
      $("call-announcer").textContent = "Reason saved. You can take calls again.";
      readMe();
    });
  }

  // -- reports ---------------------------------------------------------------------------

  function reportSid() {
    return (call && call.call_sid) || pinned || (lastCall && lastCall.call_sid) || "";
  }

  function submitIncident(event) {
    event.preventDefault();
    var sid = reportSid();
    var message = $("incident-message");
    if (!sid) { say(message, "There is no call to report an incident against yet.", "error"); return; }
    var form = event.target;
    request("POST", "/api/calls/" + encodeURIComponent(sid) + "/incident", {
      category: form.category.value, police_reference: form.police_reference.value, notes: form.notes.value,
    }).then(function (answer) {
      if (answer.ok) {
        form.reset();
        say(message, "Incident recorded for a manager to follow up.", "ok");
      } else {
        say(message, explain(answer), "error");
      }
    });
  }

  function submitProposal(event) {
    event.preventDefault();
    var sid = reportSid();
    var message = $("proposal-message");
    if (!sid) { say(message, "There is no call to propose the caller from yet.", "error"); return; }
    var form = event.target;
    var categories = Array.prototype.map.call(
      form.querySelectorAll('input[name="categories"]:checked'), function (box) { return box.value; });
    if (!categories.length) { say(message, "Tick at least one kind of behaviour.", "error"); return; }
    if (!form.reason.value.trim()) { say(message, "Say why you propose the caller.", "error"); return; }
    request("POST", "/api/calls/" + encodeURIComponent(sid) + "/proposal", {
      categories: categories, reason: form.reason.value, customer_ref: form.customer_ref.value,
    }).then(function (answer) {
      if (answer.ok) {
        form.reset();
        say(message, "Proposal sent; a manager will decide.", "ok");
      } else {
        say(message, explain(answer), "error");
      }
    });
  }

  // -- the phone: simulator legs, or the Twilio Voice SDK --------------------------------

  function renderPhone() {
    var card = $("phone");
    var isRinging = !!ringing;
    card.hidden = !isRinging && !onPhone;
    $("phone-title").textContent = isRinging ? "Incoming call" : "On the phone";
    $("phone-detail").textContent = isRinging
      ? "A caller is waiting. Answer to speak to them."
      : "You are connected to the caller.";
    $("answer").hidden = !isRinging;
    $("decline").hidden = !isRinging;
    $("hangup").hidden = isRinging || !onPhone;
    $("mute").hidden = isRinging || !onPhone || onPhone.kind !== "twilio";
    if (isRinging && !call) announceCall("phone:" + (ringing.sid || "twilio"), null);
    if (isRinging && document.activeElement === document.body) $("answer").focus();
  }

  // Legs this page answered or declined: until the simulator has acted on it, a leg still reads
  // as ringing, and must not offer Answer again.
  var legsActedOn = {};

  // One read of the legs at a time (as for the call), so that an older answer never wins.
  var pollLegs = oneAtATime(readLegs);

  function readLegs() {
    return request("GET", "/simulator/legs").then(function (answer) {
      if (!answer.ok) return undefined;
      var legs = answer.data.legs || [];
      var ring = legs.filter(function (l) {
        return l.status === "ringing" && !legsActedOn[l.sid];
      })[0];
      var up = legs.filter(function (l) {
        return l.status === "in-progress" || (l.status === "ringing" && legsActedOn[l.sid] === "answer");
      })[0];
      var rang = ring && !(ringing && ringing.sid === ring.sid);
      ringing = ring ? { kind: "simulator", sid: ring.sid } : null;
      onPhone = up ? { kind: "simulator", sid: up.sid } : null;
      if (rang) return ringWithDetails();
      renderPhone();
      return undefined;
    });
  }

  function legAct(leg, act) {
    legsActedOn[leg.sid] = act;
    return request("POST", "/simulator/legs/" + encodeURIComponent(leg.sid) + "/" + act).then(function (answer) {
      if (!answer.ok) {
        delete legsActedOn[leg.sid];
        say($("call-message"), explain(answer), "error");
      }
      return pollLegs();
    });
  }

  function answerCall() {
    if (!ringing) return;
    if (ringing.kind === "twilio") {
      ringing.call.accept();
      onPhone = ringing;
      ringing = null;
      renderPhone();
    } else {
      var leg = ringing;
      ringing = null;
      renderPhone();
      legAct(leg, "answer").then(function () { followAnswer(ANSWER_FOLLOW_TRIES); });
    }
  }

  function declineCall() {
    if (!ringing) return;
    var leg = ringing;
    ringing = null;
    renderPhone();
    if (leg.kind === "twilio") leg.call.reject(); else legAct(leg, "decline");
  }

  function hangUp() {
    if (!onPhone) return;
    var leg = onPhone;
    onPhone = null;
    renderPhone();
    if (leg.kind === "twilio") leg.call.disconnect(); else legAct(leg, "hangup");
  }

  function toggleMute() {
    if (!onPhone || onPhone.kind !== "twilio") return;
    var muted = !onPhone.call.isMuted();
    onPhone.call.mute(muted);
    $("mute").setAttribute("aria-pressed", muted ? "true" : "false");
    $("mute").textContent = muted ? "Unmute" : "Mute";
  }

  function startTwilioPhone() {
    var state = $("phone-state");
    if (!window.Twilio || !window.Twilio.Device) {
      state.textContent = "Phone: the browser phone did not load";
      return;
    }
    var fetchToken = function () {
      return request("GET", "/console/voice-token").then(function (answer) {
        if (!answer.ok) throw new Error(answer.data.error || explain(answer));
        return answer.data.token;
      });
    };
    fetchToken().then(function (token) {
      var device = new window.Twilio.Device(token, {
        closeProtection: "You are on a call; leaving this page hangs it up.",
        codecPreferences: ["opus", "pcmu"],
      });
      device.on("registered", function () { state.textContent = "Phone: this browser"; });
      device.on("unregistered", function () { state.textContent = "Phone: not registered"; });
      device.on("error", function (error) {
        state.textContent = "Phone: not connected to Twilio (" + (error.message || "error") + ")";
      });
      device.on("tokenWillExpire", function () {
        fetchToken().then(function (fresh) { device.updateToken(fresh); });
      });
      device.on("incoming", function (incoming) {
        ringing = { kind: "twilio", call: incoming };
        var clear = function () {
          if (ringing && ringing.call === incoming) ringing = null;
          if (onPhone && onPhone.call === incoming) onPhone = null;
          renderPhone();
        };
        incoming.on("cancel", clear);
        incoming.on("reject", clear);
        incoming.on("disconnect", clear);
        incoming.on("accept", function () { followAnswer(ANSWER_FOLLOW_TRIES); });
        ringWithDetails();
      });
      return device.register();
    }).catch(function (error) { state.textContent = "Phone: " + error.message; });
  }

  // -- the loop --------------------------------------------------------------------------

  function tick() {
    if (signedOut) return;
    var work = [refreshCall()];
    if (ticks % ME_EVERY === 0) work.push(readMe());
    ticks += 1;
    Promise.all(work).then(function () { window.setTimeout(tick, pollMs); });
  }

  // The simulator's phone rings by being read; the Twilio Voice SDK's rings arrive as events.
  function phoneTick() {
    if (signedOut) return;
    pollLegs().then(function () { window.setTimeout(phoneTick, PHONE_POLL_MS); });
  }

  document.querySelectorAll("[data-availability]").forEach(function (button) {
    button.addEventListener("click", function () { setAvailability(button.dataset.availability); });
  });
  $("warn").addEventListener("click", warn);
  $("end").addEventListener("click", function () { endCall(false); });
  $("end-threat").addEventListener("click", function () { endCall(true); });
  $("wrap-up-form").addEventListener("submit", submitWrapUp);
  $("incident-form").addEventListener("submit", submitIncident);
  $("proposal-form").addEventListener("submit", submitProposal);
  $("answer").addEventListener("click", answerCall);
  $("decline").addEventListener("click", declineCall);
  $("hangup").addEventListener("click", hangUp);
  $("mute").addEventListener("click", toggleMute);
  $("recovery-return").addEventListener("click", function () { setAvailability("available"); });

  restoreLastCall();
  renderAvailability();
  if (phoneKind === "twilio") startTwilioPhone();
  tick();
  if (phoneKind === "simulator") phoneTick();
})();
