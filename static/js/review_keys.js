// Review at the speed of a keyboard: A approve, R reject, 1-9 reason tags, G regenerate,
// J/K next/previous, Z zoom, ? help. Forms are sent once: a double press is ignored
// here, and the server would refuse a second decision with the same key anyway.
(function () {
  const root = document.getElementById("review");
  if (!root) return;
  const dialog = document.getElementById("keys");
  const forms = {};
  root.querySelectorAll("form[data-key]").forEach((form) => { forms[form.dataset.key] = form; });

  function sendOnce(form) {
    if (!form || form.dataset.sent) return;
    form.dataset.sent = "1";
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    HTMLFormElement.prototype.submit.call(form);
  }
  root.querySelectorAll("form[data-key]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (form.id === "reject-form" && !form.reason.value.trim() &&
          !form.querySelector('input[name="tags"]:checked')) {
        form.reason.focus();
        form.reason.placeholder = "Pick a tag or write a reason";
        return;
      }
      sendOnce(form);
    });
  });

  function toggleZoom() {
    root.querySelectorAll(".zoomable").forEach((z) => z.classList.toggle("zoomed"));
  }
  root.querySelectorAll(".zoomable").forEach((z) => z.addEventListener("click", toggleZoom));
  root.querySelector("[data-show-keys]")?.addEventListener("click", (e) => {
    e.preventDefault();
    dialog.showModal();
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) &&
      event.target.type !== "checkbox";
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key.toLowerCase();
    if (key === "?") { dialog.open ? dialog.close() : dialog.showModal(); return; }
    if (dialog.open) return;
    if (key === "a" && forms.a) { event.preventDefault(); sendOnce(forms.a); }
    else if (key === "r" && forms.r) { event.preventDefault(); forms.r.reason.focus(); }
    else if (key === "g" && forms.g) { event.preventDefault(); sendOnce(forms.g); }
    else if (key === "j" && root.dataset.next) { window.location = root.dataset.next; }
    else if (key === "k" && root.dataset.prev) { window.location = root.dataset.prev; }
    else if (key === "z") { toggleZoom(); }
    else if (/^[1-9]$/.test(key) && forms.r) {
      const box = forms.r.querySelectorAll('input[name="tags"]')[Number(key) - 1];
      if (box) { box.checked = !box.checked; }
    }
  });
})();
