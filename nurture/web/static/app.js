// The dashboard's own script (no inline scripts: the pages' Content-Security-Policy forbids them).
"use strict";

// A sign-in link carries its code after '#' (never sent to a server, so never in a log):
// post it, and take it out of the address bar and the history.
function signInFromLink() {
  const form = document.getElementById("signin");
  const code = window.location.hash.slice(1);
  if (!form || !code) return;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  form.querySelector("#code").value = code;
  form.submit();
}

// A list with data-sortable reorders by drag and drop (SortableJS) and by keyboard (its
// Move up / Move down buttons); either way its form is told "end" and htmx posts the new order.
function sortable(list) {
  if (list.dataset.ready) return;
  list.dataset.ready = "1";
  const changed = () => list.closest("form").dispatchEvent(new Event("end", { bubbles: true }));
  new Sortable(list, { animation: 150, handle: ".handle", onEnd: changed });
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button) return;
    event.preventDefault();
    const item = button.closest("li");
    const other = button.dataset.move === "up" ? item.previousElementSibling : item.nextElementSibling;
    if (!other) return;
    if (button.dataset.move === "up") list.insertBefore(item, other);
    else list.insertBefore(other, item);
    button.focus();
    changed();
  });
}

// A Cancel button with data-dismiss closes the dialog it is in.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-dismiss]");
  if (button) button.closest("section, dialog").remove();
});

// What a change did (the server's HX-Trigger: {"nurture:flash": "applied: ..."}), in #flash.
document.addEventListener("nurture:flash", (event) => {
  const line = document.createElement("p");
  line.className = "flash";
  line.textContent = event.detail.value;
  document.getElementById("flash").replaceChildren(line);
});

document.addEventListener("DOMContentLoaded", signInFromLink);
document.addEventListener("DOMContentLoaded", () => {
  htmx.onLoad((content) => content.querySelectorAll("[data-sortable]").forEach(sortable));
});
