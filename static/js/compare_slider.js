// The compare page's slider: shows the left image up to the slider's position.
(function () {
  const range = document.getElementById("slider-range");
  if (!range) return;
  const left = document.getElementById("slider-left");
  const show = () => { left.style.clipPath = `inset(0 ${100 - range.value}% 0 0)`; };
  range.addEventListener("input", show);
  show();
})();
