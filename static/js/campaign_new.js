// The new-campaign page: show the builder or the file fields for the chosen plan kind.
(function () {
  const radios = document.querySelectorAll('input[name="plan_kind"]');
  if (!radios.length) return;
  const builder = document.querySelector('[data-plan="builder"]');
  const file = document.querySelector('[data-plan="file"]');

  function show() {
    const kind = document.querySelector('input[name="plan_kind"]:checked').value;
    builder.classList.toggle("hidden", kind !== "builder");
    file.classList.toggle("hidden", kind === "builder");
    file.querySelectorAll("[data-plan-help]").forEach((help) => {
      help.classList.toggle("hidden", help.dataset.planHelp !== kind);
    });
  }
  radios.forEach((radio) => radio.addEventListener("change", show));
  show();
})();
