// Landing / sign-in: offers the Easy Auth sign-in, or a way on when already signed in.
import { currentPrincipal } from "../core/session.js";

const principal = await currentPrincipal().catch(() => null);
if (principal) {
  document.getElementById("continue").hidden = false;
  document.getElementById("sign-in").hidden = true;
  const note = document.getElementById("signed-in-note");
  note.hidden = false;
  note.textContent = `Signed in as ${principal.userDetails}.`;
}
