// While this page shows an image awaiting review, this reviewer holds it (a claim): the
// page renews the claim a few times per lease while it is visible, takes it again when it
// becomes visible, reloads if another reviewer took it meanwhile, and gives it back when
// the page goes away (a beacon, with this page's token, so a reload keeps its new claim).
(function () {
  const root = document.getElementById("review");
  if (!root || !root.dataset.claimUrl) return;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
  const token = root.dataset.claimToken;
  const every = Math.max(5, Number(root.dataset.renewS) / 3) * 1000;

  function body() {
    const data = new FormData();
    if (csrf) data.append("csrfmiddlewaretoken", csrf.value);
    data.append("token", token);
    return data;
  }
  async function renew() {
    try {
      const response = await fetch(root.dataset.claimUrl, { method: "POST", body: body(), credentials: "same-origin" });
      if (response.ok && !(await response.json()).held) window.location.reload();
    } catch (err) {
      // a network blip: the next renewal tries again
    }
  }
  setInterval(() => { if (document.visibilityState === "visible") renew(); }, every);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") renew(); });
  window.addEventListener("pagehide", () => { navigator.sendBeacon(root.dataset.releaseUrl, body()); });
  // Back to this page from the browser's cache: it was given back on the way out.
  window.addEventListener("pageshow", (event) => { if (event.persisted) renew(); });
})();
