// Keeps a campaign's page current without a reload: counts, pace, time left, GPU-seconds.
// A change of status (paused by its breaker, say) reloads the page for its controls.
(function () {
  const root = document.getElementById("campaign");
  if (!root) return;
  const url = root.dataset.statusUrl;

  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // As stats.Progress.eta_text writes it.
  function duration(seconds) {
    if (seconds === null) return "not known yet";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function set(name, text) {
    const element = root.querySelector(`[data-field="${name}"]`);
    if (element) element.textContent = text;
  }

  async function refresh() {
    let data;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      data = await response.json();
    } catch (error) {
      return; // offline for a moment: try again next time
    }
    const nowFinished = data.status === "running" && data.remaining === 0 && root.dataset.finished === "0";
    if (data.status !== root.dataset.status || nowFinished) { window.location.reload(); return; }
    Object.entries(data.counts).forEach(([status, n]) => {
      const element = root.querySelector(`[data-count="${status}"]`);
      if (element) element.textContent = n;
    });
    root.querySelector('[data-field="done_fraction"]').value = data.done_fraction;
    set("approved_cells", data.approved_cells);
    set("decided", data.decided);
    set("rejected", data.rejected);
    set("per_minute", data.per_minute.toFixed(1));
    set("eta", data.remaining === 0 ? "nothing left to run" : duration(data.eta_seconds));
    set("gpu_seconds", data.gpu_seconds.toFixed(1));
  }

  setInterval(refresh, 2000);
})();
