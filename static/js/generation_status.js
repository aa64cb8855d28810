// The page of a queued or running generation: keeps its place in line, waiting reason and
// progress current, and reloads once its status changes (then the page has other parts:
// the image, the decision forms).
(function () {
  const box = document.getElementById("run-state");
  if (!box) return;
  const id = Number(box.dataset.generation);

  function show(element, text) {
    element.textContent = text;
    element.classList.toggle("hidden", !text);
  }

  async function poll() {
    let waiting = false;
    try {
      const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const gen = (await response.json()).generations.find((g) => g.id === id);
        if (!gen || gen.status !== box.dataset.status) { window.location.reload(); return; }
        show(box.querySelector("[data-place]"), gen.place);
        show(box.querySelector("[data-waiting]"), gen.waiting_reason ? "Waiting: " + gen.waiting_reason : "");
        show(box.querySelector("[data-progress-text]"), gen.progress_text);
        show(box.querySelector("[data-error]"), gen.error);
        waiting = Boolean(gen.waiting_reason);
      }
    } catch (err) {
      // a network blip: try again
    }
    setTimeout(poll, waiting ? 5000 : 1000);
  }
  setTimeout(poll, 1000);
})();
