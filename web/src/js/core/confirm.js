// The confirm step every operation goes through: names what happens and where.
// Destructive actions use the danger colour and make the user type the environment name.
// The safe choice has the focus: Enter pressed twice (once on the form, once more here)
// closes the dialog without running anything.

import { $, h } from "./dom.js";

export function confirmAction({ title, lines = [], okLabel = "Confirm", cancelLabel = "Cancel", danger = false, typeToConfirm = null }) {
  const dialog = $("#confirm-dialog");
  const body = $("#confirm-body");
  const ok = $("#confirm-ok");
  const cancel = $("#confirm-cancel");
  $("#confirm-title").textContent = title;
  body.replaceChildren(...lines.filter(Boolean).map((line) => (line instanceof Node ? line : h("p", {}, line))));
  ok.textContent = okLabel;
  ok.className = `button ${danger ? "danger" : "primary"}`;
  cancel.textContent = cancelLabel;
  dialog.classList.toggle("danger", danger);
  let input = null;
  if (typeToConfirm) {
    input = h("input", { id: "confirm-type", autocomplete: "off", spellcheck: "false" });
    body.append(h("label", { class: "field", for: "confirm-type" },
      h("span", {}, "Type ", h("code", {}, typeToConfirm), " to confirm"), input));
    ok.disabled = true;
    input.addEventListener("input", () => { ok.disabled = input.value.trim() !== typeToConfirm; });
  } else {
    ok.disabled = false;
  }
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    (input || cancel).focus();
  });
}
