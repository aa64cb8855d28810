// The review queue: "select all" for the bulk form; filters apply as soon as they change.
document.getElementById("select-all")?.addEventListener("change", (e) => {
  document.querySelectorAll('#bulk input[name="ids"]').forEach((box) => { box.checked = e.target.checked; });
});
document.querySelectorAll("#queue-filters select").forEach((s) => s.addEventListener("change", () => s.form.submit()));
