// The header's unread count, kept current by polling the web service's /inbox/unread.
(function () {
  var tag = document.getElementById("unread-count");
  if (!tag) return;
  setInterval(function () {
    fetch("/inbox/unread", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) tag.textContent = body.unread + " unread"; })
      .catch(function () {});
  }, Number(tag.dataset.pollMs) || 15000);
})();
