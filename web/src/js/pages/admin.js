// Admin: create agent pools and issue registration tokens (global admin; SWA route needs admin).
import { api, apiAll } from "../core/api.js";
import { $, clear, fmtTime, formMessage, h, problemText } from "../core/dom.js";
import { requireSession } from "../core/session.js";

await requireSession();

async function loadPools() {
  const pools = (await apiAll("/api/pools")).items;
  clear($("#token-pool")).append(...pools.map((p) => h("option", { value: p.name }, p.name)));
}

$("#pool-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    const pool = await api("/api/pools", { method: "POST", body: Object.fromEntries(new FormData(form)) });
    formMessage(form, "ok", `Created pool ${pool.name}.`);
    form.reset();
    await loadPools();
  } catch (err) {
    formMessage(form, "error", `Could not create the pool. ${problemText(err)}`);
  }
});

$("#token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const pool = form.elements.pool.value;
  try {
    const issued = await api(`/api/pools/${encodeURIComponent(pool)}/registration-tokens`, {
      method: "POST", body: { expiresInMinutes: Number(form.elements.minutes.value) || 60 },
    });
    const out = $("#token-output");
    out.hidden = false;
    out.textContent = `${issued.token}\n(expires ${fmtTime(issued.expiresAt)})`;
    formMessage(form, "ok", "Copy the token now; it is not shown again.");
  } catch (err) {
    formMessage(form, "error", `Could not issue a token. ${problemText(err)}`);
  }
});

loadPools().catch((err) => formMessage($("#token-form"), "error", problemText(err)));
