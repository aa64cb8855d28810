// The undo bar: counts down the seconds left to undo the last decision, hides itself when
// they are gone, and U (outside a text field) sends it.
(function () {
  const bar = document.getElementById("undo");
  if (!bar) return;
  const deadline = Date.now() + Number(bar.dataset.leftS) * 1000;
  const left = bar.querySelector("[data-undo-left]");
  function tick() {
    const s = Math.ceil((deadline - Date.now()) / 1000);
    if (s <= 0) { bar.remove(); return; }
    left.textContent = s + " s left";
    setTimeout(tick, 250);
  }
  tick();
  let sent = false;
  function send() {
    if (sent || !document.body.contains(bar)) return;
    sent = true;
    bar.dataset.sent = "1";
    bar.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    HTMLFormElement.prototype.submit.call(bar);
  }
  bar.addEventListener("submit", (event) => { event.preventDefault(); send(); });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) && event.target.type !== "checkbox") return;
    if (document.querySelector("dialog[open]")) return;
    if (event.key.toLowerCase() === "u") { event.preventDefault(); send(); }
  });
})();
