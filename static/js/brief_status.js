// Keeps the brief page's statuses and progress bars current without a reload.
(function () {
  const grid = document.getElementById("generations");
  if (!grid) return;
  const url = grid.dataset.statusUrl;
  const thumbUrl = (id) => grid.dataset.thumbUrl.replace("/0/", "/" + id + "/");
  const ACTIVE = new Set(["queued", "submitting", "running"]);
  // Widths come from data-percent: the page's Content-Security-Policy forbids style attributes.
  grid.querySelectorAll(".bar[data-percent]").forEach((bar) => { bar.style.width = bar.dataset.percent + "%"; });

  function update(gen) {
    const card = grid.querySelector(`[data-generation="${gen.id}"]`);
    if (!card) { window.location.reload(); return; }
    const status = card.querySelector("[data-status]");
    status.textContent = gen.status_label;
    status.className = "status status-" + gen.status;
    const progress = card.querySelector("[data-progress]");
    progress.classList.toggle("hidden", !ACTIVE.has(gen.status));
    progress.querySelector(".bar").style.width = Math.round(gen.progress * 100) + "%";
    progress.querySelector("[data-progress-text]").textContent = gen.progress_text;
    const cancel = card.querySelector("[data-cancel]");
    if (cancel) cancel.classList.toggle("hidden", !ACTIVE.has(gen.status));
    const place = card.querySelector("[data-place]");
    place.textContent = gen.place;
    place.classList.toggle("hidden", !gen.place);
    const waiting = card.querySelector("[data-waiting]");
    waiting.textContent = "Waiting: " + gen.waiting_reason;
    waiting.classList.toggle("hidden", !gen.waiting_reason);
    const error = card.querySelector("[data-error]");
    error.textContent = gen.error;
    error.classList.toggle("hidden", !gen.error);
    const thumb = card.querySelector(".thumb");
    const placeholder = thumb.querySelector(".placeholder");
    if (placeholder) placeholder.textContent = gen.status_label;
    if (gen.thumbnails.length && !thumb.querySelector("img")) {
      thumb.innerHTML = "";
      gen.thumbnails.forEach((id) => {
        const img = document.createElement("img");
        img.src = thumbUrl(id);
        img.alt = "Generation " + gen.id;
        thumb.appendChild(img);
      });
    }
  }

  async function poll() {
    let anyActive = false;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        data.generations.forEach(update);
        anyActive = data.generations.some((g) => ACTIVE.has(g.status));
      }
    } catch (err) {
      anyActive = true; // a network blip: try again
    }
    setTimeout(poll, anyActive ? 1000 : 5000);
  }
  poll();
})();
