// A run's page, live: the snapshot the server rendered, then the run's event stream from the
// snapshot's number on. Each event changes a node's classes (never the layout), a table row
// and the timeline; when the run's status changes, the header and the approval forms are
// fetched again as the server renders them. window.pardagStats records, for each event, the
// time from its arrival to the next frame painted after it was applied (docs/performance.md).
import { drawDag, STATE_LABELS } from "./dag.js";
import { drawTimeline } from "./timeline.js";
import { debounced, follow } from "./live.js";

const STATE_OF = {
  step_ready: "ready", step_waiting: "waiting", step_started: "running",
  step_retrying: "retrying", step_succeeded: "succeeded", step_failed: "failed",
  step_skipped: "skipped", step_cancelled: "cancelled", step_paused: "paused",
  step_resumed: "running",
};
const FINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

const snapshot = JSON.parse(document.getElementById("snapshot").textContent);
const run = snapshot.run;
const nodes = new Set(snapshot.graph.nodes.map((n) => n.id));
const instances = new Map(); // mapped step -> {states: Map(instance id -> state), counts}
const rows = new Map([...document.querySelectorAll("#steps tr[data-step]")].map((r) => [r.dataset.step, r]));
const stats = (window.pardagStats = { events: 0, lags: [] });
let live = !FINAL.has(run.status);

const dag = drawDag(document.getElementById("dag"), snapshot.graph, { onSelect: select });
const timeline = drawTimeline(document.getElementById("timeline"), { start: run.created_at, onSelect: select });
window.pardagDag = dag;

function parentOf(id) {
  const found = /^(.+)\[(\d+)\]$/.exec(id);
  return found && nodes.has(found[1]) ? found[1] : null;
}

function setStep(id, state, info) {
  const parent = parentOf(id);
  if (parent) return setInstance(parent, id, state);
  dag.setStep(id, { state, ...info });
  const row = rows.get(id);
  if (!row) return;
  const badge = row.querySelector(".state .badge");
  badge.className = `badge st-${state}`;
  badge.textContent = STATE_LABELS[state] || state;
  if (info.attempts) row.querySelector(".attempts").textContent = info.attempts;
  if (info.reason) row.querySelector(".reason").textContent = info.reason;
}

function setInstance(parent, id, state, draw = true) {
  if (!instances.has(parent)) instances.set(parent, { states: new Map(), counts: {} });
  const mine = instances.get(parent);
  const before = mine.states.get(id);
  if (before) mine.counts[before] -= 1;
  mine.counts[state] = (mine.counts[state] || 0) + 1;
  mine.states.set(id, state);
  if (draw) dag.setCounts(parent, { total: mine.states.size, states: mine.counts });
}

for (const [id, s] of Object.entries(snapshot.steps)) {
  setStep(id, s.state, { reason: s.error || s.reason, attempts: s.attempts });
}
for (const [parent, found] of Object.entries(snapshot.instances)) {
  for (const [id, state] of found) setInstance(parent, id, state, false);
  const mine = instances.get(parent);
  if (mine) dag.setCounts(parent, { total: mine.states.size, states: mine.counts });
}
for (const node of snapshot.graph.nodes) {
  if (!snapshot.steps[node.id]) dag.setStep(node.id, { state: "pending" });
}
for (const event of snapshot.events) timeline.add(event);
showWaits(snapshot.events);

// A step parked on a full pool is recorded only as an event: its badge comes from there.
function showWaits(events) {
  const last = new Map();
  for (const event of events) if (event.step) last.set(event.step, event);
  for (const [id, event] of last) {
    const s = snapshot.steps[id];
    if (event.kind === "step_waiting" && (!s || s.state === "ready" || s.state === "pending")) {
      setStep(id, "waiting", { waiting_on: event.data.waiting_on });
    }
  }
}
if (!live) timeline.finish(run.finished_at || snapshot.now);

const refreshHead = debounced(async () => {
  const answer = await fetch(location.pathname);
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const id of ["run-head", "approvals"]) {
    const now = document.getElementById(id);
    const next = fresh.getElementById(id);
    if (now && next) now.replaceWith(next);
  }
}, 100);

function apply(event) {
  const arrived = performance.now();
  stats.events += 1;
  timeline.add(event);
  const state = STATE_OF[event.kind];
  if (event.step && state) {
    const data = event.data || {};
    setStep(event.step, state, {
      reason: data.reason || data.error, waiting_on: data.waiting_on, attempts: event.attempt,
    });
  }
  if (event.kind === "run_finished" && FINAL.has((event.data || {}).status)) {
    live = false; // (a paused run ends its turn, not its life: an answer resumes it)
    timeline.finish(event.at);
  }
  if (["run_started", "run_finished", "step_paused"].includes(event.kind)) refreshHead("head");
  requestAnimationFrame(() => stats.lags.push(performance.now() - arrived));
}

async function select(id) {
  dag.select(id);
  const answer = await fetch(`/runs/${encodeURIComponent(run.id)}/panel/${encodeURIComponent(id)}`);
  if (answer.ok) document.getElementById("panel").innerHTML = await answer.text();
}

function showTab(which) {
  for (const [tab, panel] of [["tab-dag", "dag"], ["tab-timeline", "timeline"]]) {
    const on = panel === which;
    document.getElementById(tab).setAttribute("aria-selected", String(on));
    document.getElementById(panel).hidden = !on;
  }
}
document.getElementById("tab-dag").addEventListener("click", () => showTab("dag"));
document.getElementById("tab-timeline").addEventListener("click", () => showTab("timeline"));

setInterval(() => {
  if (!live) return;
  timeline.tick(Date.now() / 1000);
  const took = document.getElementById("run-took");
  if (took && !took.dataset.end) {
    took.textContent = `${(Date.now() / 1000 - Number(took.dataset.start)).toFixed(0)} s`;
  }
}, 1000);

if (live || run.status === "paused") {
  follow(`/api/runs/${encodeURIComponent(run.id)}/events`, snapshot.seq, apply);
}
