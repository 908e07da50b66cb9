// How the console's pages talk to callflow's JSON API: the session cookie, the CSRF token the
// page carries (kept current by setCsrfToken when the server renews it), and an answer that
// never throws: { ok, status, data }, with status 0 when the server could not be reached.
(function () {
  "use strict";

  var tokenTag = document.querySelector('meta[name="csrf-token"]');
  var signedOutListeners = [];

  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = tokenTag ? tokenTag.content : "";
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (ignored) { data = null; }
        if (response.status === 401) signedOutListeners.forEach(function (listener) { listener(); });
        return { ok: response.ok, status: response.status, data: data || {} };
      });
    }, function () {
      return { ok: false, status: 0, data: { error: "callflow could not be reached" } };
    });
  }

  window.callflowApi = {
    request: request,
    setCsrfToken: function (token) { if (tokenTag) tokenTag.content = token; },
    onSignedOut: function (listener) { signedOutListeners.push(listener); }
  };
})();
