// The runs list, live: rows change as their runs do, and new runs appear at the top of the
// first page (when no filter is set). Each changed run's row is fetched as the server renders
// it (/runs/ID/row), so the live row and the one a reload shows are the same HTML.
import { debounced, follow } from "./live.js";

let table = document.getElementById("runs");

async function refresh(runId) {
  if (!table) return;
  const row = document.getElementById(`run-${runId}`);
  if (!row && table.dataset.live !== "top") return;
  const answer = await fetch(`/runs/${encodeURIComponent(runId)}/row`, { headers: { "HX-Request": "true" } });
  if (!answer.ok) return;
  const holder = document.createElement("tbody");
  holder.innerHTML = (await answer.text()).trim();
  const fresh = holder.firstElementChild;
  if (!fresh) return;
  const now = document.getElementById(`run-${runId}`);
  if (now) now.replaceWith(fresh);
  else table.tBodies[0].prepend(fresh);
  fresh.classList.add("changed");
}

if (table) {
  const later = debounced(refresh, 150);
  follow("/api/events", Number(table.dataset.gseq || 0), (event) => later(event.run));
  document.body.addEventListener("htmx:afterSettle", () => {
    table = document.getElementById("runs"); // the filters swapped the list
  });
}
