// supportctl's web view: a small progressive enhancement. Every page works
// without it; with it, the access table filters as you type (the rows of
// the page shown; the form still asks the server for every page), and `/`
// puts the cursor in the filter.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("filter");
  const table = document.getElementById("access");
  if (!filter || !table) {
    return;
  }
  const rows = Array.from(table.tBodies[0].rows);
  const text = rows.map((row) => row.cells[0].textContent.toLowerCase());
  filter.addEventListener("input", () => {
    const wanted = filter.value.trim().toLowerCase();
    rows.forEach((row, i) => {
      row.hidden = wanted !== "" && !text[i].includes(wanted);
    });
  });
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (event.key === "/" && !typing) {
      event.preventDefault();
      filter.focus();
    }
  });
});
