// The matrix review: cells laid out on two axes, fetched a block of rows at a time as
// they scroll into view; arrow keys move in 2-D, Space selects, A/R/G decide, Enter opens.
(function () {
  const root = document.getElementById("matrix");
  if (!root) return;
  const config = JSON.parse(document.getElementById("matrix-config").textContent);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const bar = document.getElementById("matrix-bar");
  const message = document.querySelector("[data-message]");
  const dialog = document.getElementById("reject-dialog");
  const nRows = config.row_labels.length;
  const nCols = config.col_labels.length;
  const perBlock = config.rows_per_window;
  const blocks = new Map(); // block number -> {element, loaded}
  const cells = new Map(); // "row:col" -> cell data
  const selected = new Set(); // cell indexes
  let focus = { row: 0, col: 0 };

  root.style.setProperty("--cols", nCols);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function headerButton(act, label, scope, at) {
    const button = el("button", "mini", label);
    button.type = "button";
    button.dataset.act = act;
    button.dataset.scope = scope;
    button.dataset.at = at;
    button.title = `${act === "approve" ? "Approve" : "Reject"} this ${scope}`;
    return button;
  }

  // The frame: column headers, then one placeholder per block of rows.
  const head = el("div", "matrix-row matrix-head");
  head.append(el("div", "corner", `${config.rows_axis} \\ ${config.cols_axis}`));
  config.col_labels.forEach((label, col) => {
    const th = el("div", "col-head");
    th.append(el("span", "axis-label", label));
    if (config.can_decide) {
      th.append(headerButton("approve", "✓", "column", col), headerButton("reject", "✗", "column", col));
    }
    head.append(th);
  });
  root.append(head);
  for (let block = 0; block * perBlock < nRows; block++) {
    const element = el("div", "matrix-block");
    element.dataset.block = block;
    const rows = Math.min(perBlock, nRows - block * perBlock);
    element.style.setProperty("--rows", rows);
    root.append(element);
    blocks.set(block, { element, loaded: false });
  }

  const observer = new IntersectionObserver((entries) => {
    entries.forEach((entry) => {
      if (entry.isIntersecting) load(Number(entry.target.dataset.block));
    });
  }, { rootMargin: "600px 0px" });
  blocks.forEach(({ element }) => observer.observe(element));

  function query(extra) {
    return new URLSearchParams({ ...config.layout_query, ...extra }).toString();
  }

  async function load(block, force) {
    const entry = blocks.get(block);
    if (!entry || (entry.loaded && !force)) return;
    entry.loaded = true;
    // Only the newest request of a block paints it: an older answer arriving late
    // (two decisions in quick succession) is dropped.
    const ticket = (entry.ticket || 0) + 1;
    entry.ticket = ticket;
    const r0 = block * perBlock;
    const r1 = Math.min(nRows, r0 + perBlock);
    let data;
    try {
      const response = await fetch(`${config.cells_url}?${query({ r0, r1 })}`);
      if (!response.ok) throw new Error(response.status);
      data = await response.json();
    } catch (error) {
      entry.loaded = false; // fetched again when next seen or asked for
      return;
    }
    if (ticket === entry.ticket) render(entry.element, r0, r1, data.cells);
  }

  function render(element, r0, r1, list) {
    const byPlace = new Map(list.map((cell) => [`${cell.row}:${cell.col}`, cell]));
    element.replaceChildren();
    for (let row = r0; row < r1; row++) {
      const line = el("div", "matrix-row");
      const rh = el("div", "row-head");
      rh.append(el("span", "axis-label", config.row_labels[row]));
      if (config.can_decide) {
        rh.append(headerButton("approve", "✓", "row", row), headerButton("reject", "✗", "row", row));
      }
      line.append(rh);
      for (let col = 0; col < nCols; col++) {
        const cell = byPlace.get(`${row}:${col}`);
        line.append(cell ? cellElement(cell) : el("div", "cell empty"));
        if (cell) cells.set(`${row}:${col}`, cell);
      }
      element.append(line);
    }
    paintFocus();
  }

  function cellElement(cell) {
    const box = el("div", `cell status-cell-${cell.status}`);
    box.dataset.row = cell.row;
    box.dataset.col = cell.col;
    box.dataset.index = cell.index;
    box.id = `cell-${cell.index}`;
    if (selected.has(cell.index)) box.classList.add("selected");
    const link = el("a", "cell-image");
    if (cell.generation) {
      link.href = config.detail_url.replace("/0/", `/${cell.generation}/`) +
        "?back=" + encodeURIComponent(`${config.here}#cell-${cell.index}`);
    }
    if (cell.thumb) {
      const img = el("img");
      img.src = config.thumb_url.replace("/0/", `/${cell.thumb}/`);
      img.alt = `Cell ${cell.index + 1}`;
      img.loading = "lazy";
      link.append(img);
    } else {
      link.append(el("span", "placeholder", cell.status_label || "—"));
    }
    box.append(link);
    const meta = el("div", "cell-meta");
    meta.append(el("span", `status status-${cell.status}`, cell.status_label));
    if (cell.regenerated) meta.append(el("span", "muted small", "regenerated"));
    box.append(meta);
    box.addEventListener("click", (event) => {
      if (event.target.closest("a") && !event.shiftKey) return;
      event.preventDefault();
      focus = { row: cell.row, col: cell.col };
      toggle(cell.index);
      paintFocus();
    });
    return box;
  }

  function paintFocus() {
    root.querySelectorAll(".cell.focus").forEach((node) => node.classList.remove("focus"));
    const node = root.querySelector(`.cell[data-row="${focus.row}"][data-col="${focus.col}"]`);
    if (node) node.classList.add("focus");
    return node;
  }

  function toggle(index) {
    if (selected.has(index)) selected.delete(index); else selected.add(index);
    const node = document.getElementById(`cell-${index}`);
    if (node) node.classList.toggle("selected", selected.has(index));
    const n = selected.size;
    bar.querySelector("[data-selected]").textContent = n ? `${n} selected` : "No cell selected";
    bar.querySelectorAll('[data-scope="selection"]').forEach((button) => { button.disabled = !n; });
  }

  async function move(dRow, dCol) {
    focus = {
      row: Math.max(0, Math.min(nRows - 1, focus.row + dRow)),
      col: Math.max(0, Math.min(nCols - 1, focus.col + dCol)),
    };
    const block = Math.floor(focus.row / perBlock);
    if (!blocks.get(block).loaded) await load(block);
    const node = paintFocus();
    if (node) node.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function say(text, bad) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(bad));
  }

  async function act(action, target, tags, reason) {
    const body = { action, layout: config.layout_query, tags: tags || [], reason: reason || "", ...target };
    const response = await fetch(config.decide_url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({ error: "the server did not answer" }));
    if (data.error) { say(data.error, true); return; }
    const verb = { approve: "Approved", reject: "Rejected", regenerate: "Regenerated" }[action];
    const problems = data.problems.length ? ` · ${data.problems.length} refused: ${data.problems.slice(0, 3).join("; ")}` : "";
    say(`${verb} ${data.done.length} cell${data.done.length === 1 ? "" : "s"}${problems}`, data.problems.length > 0 && !data.done.length);
    data.done.forEach((index) => { if (selected.has(index)) toggle(index); });
    blocks.forEach((entry, block) => { if (entry.loaded) load(block, true); });
  }

  function askReject(title) {
    return new Promise((resolve) => {
      dialog.querySelector("[data-reject-title]").textContent = title;
      dialog.querySelector("[data-reject-error]").textContent = "";
      dialog.querySelectorAll("input[name=tag]").forEach((box) => { box.checked = false; });
      dialog.querySelector("textarea").value = "";
      dialog.onclose = () => {
        if (dialog.returnValue !== "confirm") { resolve(null); return; }
        const tags = [...dialog.querySelectorAll("input[name=tag]:checked")].map((box) => box.value);
        resolve({ tags, reason: dialog.querySelector("textarea").value });
      };
      dialog.showModal();
    });
  }

  dialog.addEventListener("keydown", (event) => {
    const number = Number(event.key);
    if (event.target.tagName !== "TEXTAREA" && number >= 1 && number <= 9) {
      const box = dialog.querySelectorAll("input[name=tag]")[number - 1];
      if (box) { box.checked = !box.checked; event.preventDefault(); }
    }
  });
  dialog.querySelector("form").addEventListener("submit", (event) => {
    const confirming = event.submitter && event.submitter.value === "confirm";
    const anyTag = dialog.querySelector("input[name=tag]:checked");
    if (confirming && !anyTag && !dialog.querySelector("textarea").value.trim()) {
      event.preventDefault();
      dialog.querySelector("[data-reject-error]").textContent = "Pick a tag or give a reason.";
    }
  });

  async function run(action, scope, at) {
    let target;
    let title = "Reject";
    if (scope === "row") { target = { row: at }; title = `Reject row ${config.row_labels[at]}`; }
    else if (scope === "column") { target = { col: at }; title = `Reject column ${config.col_labels[at]}`; }
    else if (scope === "selection") { target = { cells: [...selected] }; title = `Reject ${selected.size} selected`; }
    else if (scope === "rejected") { target = { target: "rejected" }; }
    else {
      const cell = cells.get(`${focus.row}:${focus.col}`);
      if (!cell) return;
      target = { cells: [cell.index] };
      title = `Reject cell ${cell.index + 1}`;
    }
    if (action === "reject") {
      const answer = await askReject(title);
      if (!answer) return;
      await act(action, target, answer.tags, answer.reason);
    } else {
      await act(action, target);
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    // The keys go back to the matrix (a focused button would take Enter and Space).
    root.focus({ preventScroll: true });
    run(button.dataset.act, button.dataset.scope, Number(button.dataset.at));
  });

  document.addEventListener("keydown", (event) => {
    if (dialog.open || event.metaKey || event.ctrlKey || event.altKey) return;
    // Keys typed into a field, or Enter/Space on a focused button or link, are theirs.
    if (event.target.closest("input, textarea, select, button, a, summary")) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[event.key]) { event.preventDefault(); move(...moves[event.key]); return; }
    const cell = cells.get(`${focus.row}:${focus.col}`);
    const key = event.key.toLowerCase();
    if (event.key === " " && cell) { event.preventDefault(); toggle(cell.index); }
    else if (event.key === "Enter" && cell && cell.generation) { paintFocus().querySelector("a").click(); }
    else if (key === "a" && config.can_decide) { run("approve", selected.size ? "selection" : "cell"); }
    else if (key === "r" && config.can_decide) { event.preventDefault(); run("reject", selected.size ? "selection" : "cell"); }
    else if (key === "g" && config.can_regenerate) { run("regenerate", selected.size ? "selection" : "cell"); }
    else if (event.key === "Escape") { [...selected].forEach(toggle); }
  });

  // Back from a cell's page: start where the reviewer left.
  const from = window.location.hash.match(/^#cell-(\d+)$/);
  if (from) {
    const wanted = Number(from[1]);
    const waitFor = setInterval(() => {
      const node = document.getElementById(`cell-${wanted}`);
      if (!node) return;
      clearInterval(waitFor);
      focus = { row: Number(node.dataset.row), col: Number(node.dataset.col) };
      paintFocus().scrollIntoView({ block: "center" });
    }, 100);
    setTimeout(() => clearInterval(waitFor), 5000);
  }
})();
