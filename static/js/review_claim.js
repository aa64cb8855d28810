// While this page shows an image awaiting review, this reviewer holds it (a claim): the
// page renews the claim a few times per lease while it is visible and someone has touched
// it within the lease, takes it again when it becomes visible, reloads if another reviewer
// took it meanwhile, and gives it back when the page goes away (a beacon with this page's
// token, so a reload keeps its new claim), unless a decision is on its way.
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
  // Held while someone is at the page: a tab left open and untouched lets it lapse.
  let lastActive = Date.now();
  ["keydown", "pointerdown", "pointermove", "wheel", "scroll", "focus"].forEach((type) =>
    window.addEventListener(type, () => { lastActive = Date.now(); }, { passive: true, capture: true }));
  const lease = Number(root.dataset.renewS) * 1000;
  setInterval(() => {
    if (document.visibilityState === "visible" && Date.now() - lastActive < lease) renew();
  }, every);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { lastActive = Date.now(); renew(); }
  });
  window.addEventListener("pagehide", () => {
    // A decision (or undo) on its way ends the claim itself; a release racing it could
    // hand the image to someone else first.
    if (document.querySelector("form[data-sent]")) return;
    navigator.sendBeacon(root.dataset.releaseUrl, body());
  });
  // Back to this page from the browser's cache: it was given back on the way out.
  window.addEventListener("pageshow", (event) => { if (event.persisted) renew(); });
})();
