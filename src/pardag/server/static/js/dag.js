// dag.js: draws one run's DAG (its steps, left to right) as SVG on pardag's run page.
//
// Why it is built this way: a run can have ~1,000 steps that change state live. So dagre
// (the vendored classic script, `window.dagre`) lays the graph out exactly once, in drawDag;
// the SVG is written with one innerHTML; and every later update (a step's state, a mapped
// step's counts, the critical path, the selection) only changes classes and text of
// elements kept in a Map by step id, with no layout-forcing reads. Colours live in dag.css.
//
//   import { drawDag, STATE_LABELS } from "/static/js/dag.js";
//   const dag = drawDag(container, {nodes, edges, critical}, { onSelect: (id) => ... });
//   dag.setStep(id, {state, reason, waiting_on, attempts}); dag.setCounts(id, {total, states});
//   dag.setCritical(ids); dag.select(id); dag.fit(); dag.zoom("in" | "out" | "fit");
//   dag.layouts (always 1); dag.destroy() (drops listeners before the container is reused).

const NODE_W = 196;
const NODE_H = 58;
const PAD = 24;           // margin around the graph when fitted
const MIN_K = 0.02;       // zoom limits
const MAX_K = 4;
const STEP_K = 1.25;      // one zoom button press or +/- key
const BIG_GRAPH = 300;    // above this many steps, dagre's network-simplex ranking takes seconds

/** Each state's icon and word: the page's table reuses the same wording. */
export const STATE_LABELS = Object.freeze({
  pending: "… pending",
  ready: "• ready",
  waiting: "◔ waiting",
  running: "▶ running",
  retrying: "↻ retrying",
  paused: "❚❚ paused",
  succeeded: "✓ succeeded",
  failed: "✗ failed",
  skipped: "↷ skipped",
  cancelled: "⊘ cancelled",
});

const ZOOM_KEYS = { "+": "in", "=": "in", "-": "out", "_": "out", "0": "fit" };

const CONTROLS =
  '<div class="dag-controls">' +
  '<button type="button" data-zoom="in" aria-label="Zoom in" title="Zoom in (+)">+</button>' +
  '<button type="button" data-zoom="out" aria-label="Zoom out" title="Zoom out (-)">−</button>' +
  '<button type="button" data-zoom="fit" aria-label="Fit to view" title="Fit (0)">⤢</button>' +
  "</div>";

let instances = 0;

/** Draws `graph` into the empty `container`; returns the handle the page updates it by. */
export function drawDag(container, graph, options = {}) {
  const uid = `dag${++instances}`;
  let layouts = 0;
  const laid = layout(graph);
  layouts += 1;
  const size = laid.graph();
  container.classList.add("dag");
  if (!container.hasAttribute("tabindex")) container.tabIndex = 0;
  container.innerHTML = svgMarkup(laid, uid) + CONTROLS;
  const svg = container.querySelector("svg");
  const nodes = indexNodes(svg);
  const edges = indexEdges(svg);
  const listening = new AbortController();
  const signal = listening.signal;
  const view = panZoom(container, svg, { width: size.width || 1, height: size.height || 1 }, signal);
  const marks = { critical: [], selected: null };

  function select(id) {
    const rec = nodes.get(id);
    if (marks.selected) {
      marks.selected.classList.remove("selected");
      marks.selected.removeAttribute("aria-current");
    }
    marks.selected = rec ? rec.g : null;
    if (rec) {
      rec.g.classList.add("selected");
      rec.g.setAttribute("aria-current", "true");
    }
    return Boolean(rec);
  }

  function choose(id) {
    select(id);
    if (options.onSelect) options.onSelect(id);
  }

  function setCritical(ids) {
    for (const el of marks.critical) markCritical(el, false, uid);
    marks.critical = [];
    (ids || []).forEach((id, i) => {
      const found = [nodes.get(id)?.g, i > 0 ? edges.get(edgeKey(ids[i - 1], id)) : null];
      for (const el of found.filter(Boolean)) {
        markCritical(el, true, uid);
        marks.critical.push(el);
      }
    });
  }

  svg.addEventListener("click", (event) => {
    const node = event.target.closest(".dag-node");
    if (node) choose(node.dataset.id);
  }, { signal });
  container.addEventListener("keydown", (event) => onKey(event, choose, view.zoom), { signal });
  container.querySelector(".dag-controls").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) view.zoom(button.dataset.zoom);
  }, { signal });
  setCritical(graph.critical);
  view.fit();

  return {
    get layouts() { return layouts; },
    svg,
    setStep: (id, info) => setStep(nodes.get(id), id, info),
    setCounts: (id, counts) => setCounts(nodes.get(id), counts),
    setCritical,
    select,
    fit: view.fit,
    zoom: view.zoom,
    get transform() { return view.transform(); },
    destroy: () => listening.abort(),
  };
}

// ---- layout and markup (once) ----

function layout(graph) {
  const dagre = window.dagre;
  if (!dagre) throw new Error("dag.js needs dagre: load vendor/dagre-*.min.js before it");
  const g = new dagre.graphlib.Graph();
  const ranker = graph.nodes.length > BIG_GRAPH ? "tight-tree" : "network-simplex";
  g.setGraph({ rankdir: "LR", nodesep: 22, ranksep: 56, edgesep: 12, ranker });
  g.setDefaultEdgeLabel(() => ({}));
  for (const step of graph.nodes) g.setNode(step.id, { width: NODE_W, height: NODE_H, step });
  for (const [from, to] of graph.edges || []) {
    if (from !== to && g.hasNode(from) && g.hasNode(to)) g.setEdge(from, to);
  }
  dagre.layout(g);
  return g;
}

function svgMarkup(g, uid) {
  const edges = g.edges().map((e) => edgeMarkup(e.v, e.w, g.edge(e).points, uid));
  const nodes = g.nodes().map((id) => nodeMarkup(g.node(id)));
  return (
    '<svg class="dag-svg" xmlns="http://www.w3.org/2000/svg" role="group" aria-label="Steps of the run">' +
    `<defs>${marker(`${uid}-arrow`, "", 8)}${marker(`${uid}-arrow-critical`, " critical", 11)}</defs>` +
    `<g class="dag-viewport"><g class="dag-edges">${edges.join("")}</g>` +
    `<g class="dag-nodes">${nodes.join("")}</g></g></svg>`
  );
}

function marker(id, extra, size) {
  return (
    `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="${size}" ` +
    `markerHeight="${size}" markerUnits="userSpaceOnUse" orient="auto">` +
    `<path class="dag-arrow${extra}" d="M0,0L10,5L0,10z"/></marker>`
  );
}

function edgeMarkup(from, to, points, uid) {
  return (
    `<path class="dag-edge" data-from="${esc(from)}" data-to="${esc(to)}" ` +
    `d="${pathData(points)}" marker-end="url(#${uid}-arrow)"/>`
  );
}

/** dagre's bend points as one smooth path: a quadratic curve through each inner point. */
function pathData(points) {
  const pt = (p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`;
  let d = `M${pt(points[0])}`;
  for (let i = 1; i < points.length - 1; i++) {
    const next = points[i + 1];
    d += `Q${pt(points[i])} ${pt({ x: (points[i].x + next.x) / 2, y: (points[i].y + next.y) / 2 })}`;
  }
  return `${d}L${pt(points[points.length - 1])}`;
}

function nodeMarkup(laid) {
  const step = laid.step;
  const id = esc(step.id);
  const kind = clip(step.kind || "", 10);
  const at = `translate(${(laid.x - NODE_W / 2).toFixed(1)},${(laid.y - NODE_H / 2).toFixed(1)})`;
  const stack = step.mapped ? rect("dag-stack", 8) + rect("dag-stack", 4) : "";
  const count = step.mapped ? '<text class="dag-count" x="10" y="52">⧉ mapped</text>' : "";
  return (
    `<g class="dag-node st-pending${step.mapped ? " mapped" : ""}" data-id="${id}" ` +
    `transform="${at}" tabindex="0" role="button" aria-label="step ${id}: pending">` +
    `<title>${id}: ${STATE_LABELS.pending}</title>` +
    rect("dag-halo", 0, 7) + rect("dag-ring", 0, 3.5) + stack + rect("dag-box", 0) +
    `<text class="dag-name" x="10" y="20">${esc(clip(step.id, nameRoom(kind)))}</text>` +
    `<text class="dag-kind" x="${NODE_W - 8}" y="20" text-anchor="end">${esc(kind)}</text>` +
    `<text class="dag-state" x="10" y="38">${STATE_LABELS.pending}</text>` + count +
    '<g class="dag-badge" transform="translate(8,-9)"><rect height="17" rx="8.5"/>' +
    '<text x="8" y="12.5"></text></g></g>'
  );
}

/** A node-sized rect: `shift` moves it up and right (the stack), `grow` widens it all round. */
function rect(cls, shift, grow = 0) {
  return (
    `<rect class="${cls}" x="${shift - grow}" y="${-shift - grow}" width="${NODE_W + 2 * grow}" ` +
    `height="${NODE_H + 2 * grow}" rx="${6 + grow}"/>`
  );
}

/** How many characters of a step's name fit beside its kind (estimated: no text is measured). */
function nameRoom(kind) {
  return Math.floor((NODE_W - 30 - kind.length * 6.3) / 8);
}

function indexNodes(svg) {
  const map = new Map();
  for (const g of svg.querySelectorAll(".dag-node")) {
    map.set(g.dataset.id, {
      g,
      state: "pending",
      title: g.querySelector("title"),
      label: g.querySelector(".dag-state"),
      count: g.querySelector(".dag-count"),
      badgeRect: g.querySelector(".dag-badge rect"),
      badgeText: g.querySelector(".dag-badge text"),
    });
  }
  return map;
}

function indexEdges(svg) {
  const map = new Map();
  for (const path of svg.querySelectorAll(".dag-edge")) {
    map.set(edgeKey(path.dataset.from, path.dataset.to), path);
  }
  return map;
}

const edgeKey = (from, to) => `${from}\u0000${to}`;

// ---- updates (classes and text only) ----

function setStep(rec, id, info) {
  if (!rec || !info || !Object.hasOwn(STATE_LABELS, info.state)) return;
  const state = info.state;
  const label = STATE_LABELS[state];
  if (!rec.g.classList.replace(`st-${rec.state}`, `st-${state}`)) rec.g.classList.add(`st-${state}`);
  rec.state = state;
  rec.label.textContent = info.attempts > 1 ? `${label} · attempt ${info.attempts}` : label;
  const waiting = state === "waiting" && info.waiting_on ? waitingText(info.waiting_on) : "";
  showBadge(rec, waiting);
  const detail = [waiting, info.reason].filter(Boolean).join("\n");
  rec.title.textContent = detail ? `${id}: ${label}\n${detail}` : `${id}: ${label}`;
  rec.g.setAttribute("aria-label", `step ${id}: ${state}`);
  if (detail) rec.g.setAttribute("aria-description", detail);
  else rec.g.removeAttribute("aria-description");
}

/** "pool 'gpu' (all 1 in use)" reads "waiting for pool gpu"; anything else as it is. */
function waitingText(waitingOn) {
  const pool = /pool '([^']*)'/.exec(waitingOn);
  return pool ? `waiting for pool ${pool[1]}` : String(waitingOn);
}

function showBadge(rec, text) {
  rec.g.classList.toggle("badged", Boolean(text));
  if (!text) return;
  const shown = clip(text, 30);
  rec.badgeText.textContent = shown;
  rec.badgeRect.setAttribute("width", String(Math.round(shown.length * 6.4 + 16)));
}

function setCounts(rec, counts) {
  if (!rec || !rec.count || !counts) return;
  const states = counts.states || {};
  let text = `${states.succeeded || 0}/${counts.total ?? 0} ✓`;
  if (states.failed) text += ` · ${states.failed} ✗`;
  if (states.running) text += ` · ${states.running} ▶`;
  rec.count.textContent = text;
}

function markCritical(el, on, uid) {
  el.classList.toggle("critical", on);
  if (el.classList.contains("dag-edge")) {
    el.setAttribute("marker-end", `url(#${uid}-arrow${on ? "-critical" : ""})`);
  }
}

function onKey(event, choose, zoom) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const node = event.target.closest(".dag-node");
  if (node && (event.key === "Enter" || event.key === " ")) {
    event.preventDefault();
    choose(node.dataset.id);
  } else if (ZOOM_KEYS[event.key] && !event.target.closest("input, textarea")) {
    event.preventDefault();
    zoom(ZOOM_KEYS[event.key]);
  }
}

// ---- pan and zoom: one transform on the viewport <g> ----

function panZoom(container, svg, bounds, signal) {
  const view = svg.querySelector(".dag-viewport");
  const t = { k: 1, x: 0, y: 0 };
  let moved = false; // once the user pans or zooms, a resize no longer refits

  const apply = () => view.setAttribute("transform", `translate(${t.x},${t.y}) scale(${t.k})`);
  const clampK = (k) => Math.min(MAX_K, Math.max(MIN_K, k));

  function fit() {
    const w = svg.clientWidth;
    const h = svg.clientHeight;
    if (!w || !h) return;
    t.k = clampK(Math.min((w - 2 * PAD) / bounds.width, (h - 2 * PAD) / bounds.height, 1));
    t.x = (w - bounds.width * t.k) / 2;
    t.y = (h - bounds.height * t.k) / 2;
    moved = false;
    apply();
  }

  function zoomAt(factor, px, py) {
    const k = clampK(t.k * factor);
    t.x = px - ((px - t.x) * k) / t.k;
    t.y = py - ((py - t.y) * k) / t.k;
    t.k = k;
    moved = true;
    apply();
  }

  function zoom(action) {
    if (action === "fit") return fit();
    zoomAt(action === "in" ? STEP_K : 1 / STEP_K, svg.clientWidth / 2, svg.clientHeight / 2);
  }

  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = svg.getBoundingClientRect();
    const delta = event.deltaY * (event.deltaMode === 1 ? 16 : 1);
    zoomAt(Math.exp(-delta * 0.002), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false, signal });
  dragToPan(svg, (dx, dy) => {
    t.x += dx;
    t.y += dy;
    moved = true;
    apply();
  }, signal);
  const resized = new ResizeObserver(() => { if (!moved) fit(); });
  resized.observe(container);
  signal.addEventListener("abort", () => resized.disconnect());
  return { fit, zoom, transform: () => ({ ...t }) };
}

/** Drag pans; a press that moves less than 4px stays a click (on a node: selects it). */
function dragToPan(svg, pan, signal) {
  let press = null;
  svg.addEventListener("pointerdown", (event) => {
    if (event.button === 0) press = { x: event.clientX, y: event.clientY, id: event.pointerId, dragging: false };
  }, { signal });
  svg.addEventListener("pointermove", (event) => {
    if (!press || event.pointerId !== press.id) return;
    const dx = event.clientX - press.x;
    const dy = event.clientY - press.y;
    if (!press.dragging && Math.hypot(dx, dy) < 4) return;
    if (!press.dragging) {
      press.dragging = true; // capturing makes the click land on the svg, not a node
      svg.setPointerCapture(event.pointerId);
      svg.classList.add("dragging");
    }
    press.x = event.clientX;
    press.y = event.clientY;
    pan(dx, dy);
  }, { signal });
  const release = () => {
    press = null;
    svg.classList.remove("dragging");
  };
  svg.addEventListener("pointerup", release, { signal });
  svg.addEventListener("pointercancel", release, { signal });
}

// ---- text ----

function clip(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
