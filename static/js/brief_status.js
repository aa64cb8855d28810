// Keeps the brief page's cards current without a reload: status, progress, place in line,
// why a generation waits, errors and thumbnails.
(function () {
  const grid = document.getElementById("generations");
  if (!grid) return;
  const url = grid.dataset.statusUrl;
  const thumbUrl = (id) => grid.dataset.thumbUrl.replace("/0/", "/" + id + "/");
  const ACTIVE = new Set(["queued", "submitting", "running"]);
  // A backend has it: a progress bar instead of a place in line.
  const STARTED = new Set(["submitting", "running"]);

  function show(element, text) {
    element.textContent = text;
    element.classList.toggle("hidden", !text);
  }

  function update(gen) {
    const card = grid.querySelector(`[data-generation="${gen.id}"]`);
    if (!card) { window.location.reload(); return; }
    const status = card.querySelector("[data-status]");
    status.textContent = gen.status_label;
    status.className = "status status-" + gen.status;
    const progress = card.querySelector("[data-progress]");
    progress.classList.toggle("hidden", !STARTED.has(gen.status));
    progress.querySelector("progress").value = gen.progress;
    progress.querySelector("[data-progress-text]").textContent = gen.progress_text;
    const cancel = card.querySelector("[data-cancel]");
    if (cancel) cancel.classList.toggle("hidden", !ACTIVE.has(gen.status));
    show(card.querySelector("[data-place]"), gen.place);
    show(card.querySelector("[data-waiting]"), gen.waiting_reason ? "Waiting: " + gen.waiting_reason : "");
    show(card.querySelector("[data-error]"), gen.error);
    const thumb = card.querySelector(".thumb");
    const placeholder = thumb.querySelector(".placeholder");
    if (placeholder) placeholder.textContent = gen.status_label;
    if (gen.thumbnails.length && !thumb.querySelector("img")) {
      thumb.replaceChildren();
      gen.thumbnails.forEach((id, index) => {
        const img = document.createElement("img");
        img.src = thumbUrl(id);
        img.alt = "Generation " + gen.id + ", image " + (index + 1);
        thumb.appendChild(img);
      });
    }
  }

  async function poll() {
    let moving = false;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        data.generations.forEach(update);
        // One that waits for a capable backend changes only when the reconciler tries it
        // again (every few seconds), so it alone does not need a poll a second.
        moving = data.generations.some((g) => ACTIVE.has(g.status) && !g.waiting_reason);
      }
    } catch (err) {
      moving = true; // a network blip: try again soon
    }
    setTimeout(poll, moving ? 1000 : 5000);
  }
  poll();
})();
