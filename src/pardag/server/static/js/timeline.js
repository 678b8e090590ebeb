/* A run's timeline: a Gantt chart of its steps, drawn from the run's events.
 *
 * Plain ES module, no libraries (the page has no build step). The page glue feeds it the
 * snapshot's events and then live ones (`add`), ticks it about once a second while the run
 * lives (`tick`) and closes it when the run ends (`finish`). Each row is a step; each
 * segment a positioned element (left/width in px from the zoom, pixels per second), so
 * zooming moves segments and never rebuilds rows. Colours come from pardag.css's variables.
 */

const LABEL_W = 180; // px, the sticky label column (timeline.css reads it as --tl-label-w)
const PAD = 24; // px of room after the last instant
const MIN_PPS = 1e-4;
const MAX_PPS = 1e4;
const TICK_PX = 90; // about this many px between two axis ticks
const STEPS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
  7200, 10800, 21600, 43200, 86400];
const RUN_ENDS = {
  step_succeeded: "succeeded", step_failed: "failed", step_cancelled: "cancelled",
};

/** "1.20 s" under a minute and a half; "2m 05s", "1h 02m" beyond. */
export function formatDuration(seconds) {
  const s = Math.max(0, seconds);
  if (s < 90) return `${s.toFixed(2)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${pad2(whole % 60)}s`;
  return `${Math.floor(whole / 3600)}h ${pad2(Math.floor(whole / 60) % 60)}m`;
}

/** An axis label, relative to the run's start: "0s", "0.5s", "5s", "1m", "1m30s", "2h". */
export function formatOffset(seconds) {
  const s = Math.round(seconds * 10) / 10;
  if (s < 60) return `${s}s`;
  const whole = Math.round(s);
  if (whole < 3600) {
    return whole % 60 ? `${Math.floor(whole / 60)}m${pad2(whole % 60)}s` : `${whole / 60}m`;
  }
  const mins = Math.floor(whole / 60) % 60;
  return mins ? `${Math.floor(whole / 3600)}h${pad2(mins)}m` : `${Math.floor(whole / 3600)}h`;
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The mapped step an instance belongs to (`process[3]` → `process`), else null. */
function parentOf(event) {
  if (event.data && typeof event.data.parent === "string") return event.data.parent;
  const match = /^(.*)\[\d+\]$/.exec(event.step);
  return match ? match[1] : null;
}

/** Draw a timeline into `container`; `start` is the run's creation time (epoch seconds),
 * `onSelect(stepId)` is called when a row's label is clicked. */
export function drawTimeline(container, { start, onSelect } = {}) {
  return new Timeline(container, start, onSelect);
}

class Timeline {
  constructor(container, start, onSelect) {
    this.start = typeof start === "number" ? start : null;
    this.onSelect = onSelect || (() => {});
    this.end = this.start ?? 0; // the latest instant shown (event or tick)
    this.pps = 50; // pixels per second
    this.fitting = true; // follow the run's length until the user zooms
    this.finished = false;
    this.seen = new Set();
    this.rows = new Map(); // step id → row
    this.segs = []; // every segment, for zoom
    this.open = new Set(); // segments still growing
    this.build(container);
    this.layout();
  }

  build(container) {
    this.root = el("div", "tl");
    this.root.setAttribute("role", "region");
    this.root.setAttribute("aria-label", "Run timeline");
    this.root.style.setProperty("--tl-label-w", `${LABEL_W}px`);
    const tools = el("div", "tl-tools");
    tools.append(
      this.button("+", "Zoom in", () => this.zoomBy(2)),
      this.button("−", "Zoom out", () => this.zoomBy(0.5)),
      this.button("fit", "Fit the whole run", () => this.fit()),
    );
    this.scroller = el("div", "tl-scroll");
    this.scroller.tabIndex = 0; // arrow keys scroll it
    const axisRow = el("div", "tl-axis-row");
    this.axis = el("div", "tl-axis");
    axisRow.append(el("div", "tl-corner", "step"), this.axis);
    this.body = el("div", "tl-rows");
    this.scroller.append(axisRow, this.body);
    this.root.append(tools, this.scroller);
    container.append(this.root);
    this.width = this.scroller.clientWidth; // what the resize observer compares with
    this.scroller.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    new ResizeObserver(() => this.resized()).observe(this.scroller);
  }

  /** A fitting chart refits when its box changes width (not on every observer call). */
  resized() {
    const width = this.scroller.clientWidth;
    if (width === this.width) return;
    this.width = width;
    if (this.fitting && this.start !== null) this.fit();
  }

  button(text, label, action) {
    const node = el("button", "tl-zoom", text);
    node.type = "button";
    node.title = label;
    node.setAttribute("aria-label", label);
    node.addEventListener("click", action);
    return node;
  }

  // ---- events ------------------------------------------------------------------------

  /** One event, in seq order; an event whose seq was already seen is ignored. */
  add(event) {
    if (event.seq !== undefined && event.seq !== null) {
      if (this.seen.has(event.seq)) return;
      this.seen.add(event.seq);
    }
    if (this.start === null) this.start = this.end = event.at;
    if (event.kind === "run_finished") return this.finish(event.at);
    if (!event.step || this.finished) return this.stretch(event.at);
    this.apply(this.row(event.step, parentOf(event)), event);
    this.stretch(event.at);
  }

  apply(row, event) {
    const { kind, at, attempt } = event;
    const data = event.data || {};
    const next = (attempt || 0) + 1; // the attempt a waiting step waits to start
    if (kind === "step_ready") {
      this.close(row, "backoff", at);
      this.opening(row, "wait", at, next);
    } else if (kind === "step_waiting") {
      this.mark(this.opening(row, "wait", at, next), { note: `on ${data.waiting_on || "a slot"}` });
    } else if (kind === "step_started") {
      this.close(row, "wait", at);
      this.close(row, "paused", at);
      this.openSeg(row, "run", at, attempt, { state: "running" });
    } else if (kind === "step_retrying") {
      this.endRun(row, at, "retrying", data.error);
      const note = `retry after ${formatDuration(data.delay || 0)}`;
      this.openSeg(row, "backoff", at, attempt, { note });
    } else if (kind in RUN_ENDS) {
      this.endRun(row, at, RUN_ENDS[kind], data.reason);
      this.closeAll(row, at);
    } else if (kind === "step_skipped") {
      this.closeAll(row, at);
      this.marker(row, at, attempt, data.reason);
    } else if (kind === "step_paused") {
      this.endRun(row, at, "paused");
      this.close(row, "wait", at);
      this.openSeg(row, "paused", at, attempt, { note: data.prompt || null });
    } else if (kind === "step_resumed") {
      this.close(row, "paused", at);
    }
  }

  /** The open segment of `kind` on `row`, opened at `at` if there is none. */
  opening(row, kind, at, attempt) {
    return row.live[kind] || this.openSeg(row, kind, at, attempt);
  }

  openSeg(row, kind, at, attempt, fields = {}) {
    this.close(row, kind, at);
    const seg = this.segment(row, kind, at, attempt);
    row.live[kind] = seg;
    this.open.add(seg);
    return this.mark(seg, fields);
  }

  /** Set a segment's fields and redraw it. */
  mark(seg, fields) {
    Object.assign(seg, fields);
    this.draw(seg);
    return seg;
  }

  segment(row, kind, at, attempt) {
    const seg = { kind, from: at, to: null, attempt: attempt || 1, state: null, note: null };
    seg.node = el("div", `seg seg-${kind}`);
    if (kind === "run") seg.node.append(el("span", "seg-text", `attempt ${seg.attempt}`));
    row.track.append(seg.node);
    this.segs.push(seg);
    return seg;
  }

  close(row, kind, at) {
    const seg = row.live[kind];
    if (!seg) return;
    row.live[kind] = null;
    this.open.delete(seg);
    seg.to = Math.max(at, seg.from);
    this.draw(seg);
  }

  closeAll(row, at) {
    for (const kind of Object.keys(row.live)) this.close(row, kind, at);
  }

  /** The open attempt ends in `state` (succeeded, failed, retrying, paused...). */
  endRun(row, at, state, why) {
    const seg = row.live.run;
    if (!seg) return;
    seg.state = state;
    if (why) seg.note = String(why);
    this.close(row, "run", at);
  }

  marker(row, at, attempt, reason) {
    const note = reason ? String(reason) : null;
    this.mark(this.segment(row, "skip", at, attempt), { to: at, note });
  }

  // ---- rows --------------------------------------------------------------------------

  /** The row of `id`, made on first sight; an instance's row goes under its parent's. */
  row(id, parent) {
    let row = this.rows.get(id);
    if (row) return row;
    const host = parent ? this.kidsOf(this.row(parent, null)) : this.body;
    row = this.makeRow(id, Boolean(parent));
    host.append(row.node);
    this.rows.set(id, row);
    if (parent) this.count(this.rows.get(parent), 1);
    return row;
  }

  makeRow(id, instance) {
    const node = el("div", instance ? "tl-row tl-instance" : "tl-row");
    node.dataset.step = id;
    const head = el("div", "tl-head");
    const label = el("button", "tl-label", id);
    label.type = "button";
    label.title = id;
    label.addEventListener("click", () => this.onSelect(id));
    head.append(label);
    const track = el("div", "tl-track");
    node.append(head, track);
    return { id, node, head, track, live: {}, kids: null, toggle: null, count: 0 };
  }

  /** The hidden box holding a mapped step's instance rows, with its toggle. */
  kidsOf(row) {
    if (row.kids) return row.kids;
    row.kids = el("div", "tl-kids");
    row.kids.hidden = true;
    row.node.after(row.kids);
    row.toggle = el("button", "tl-toggle");
    row.toggle.type = "button";
    row.toggle.setAttribute("aria-expanded", "false");
    row.toggle.addEventListener("click", () => this.expand(row, row.kids.hidden));
    row.toggle.setAttribute("aria-label", `instances of ${row.id}`);
    row.head.prepend(row.toggle);
    return row.kids;
  }

  /** The toggle shows how many instances the mapped step has, and whether they show. */
  count(row, more) {
    row.count += more;
    row.toggle.textContent = `${row.kids.hidden ? "▸" : "▾"} ${row.count}`;
    row.toggle.title = `${row.kids.hidden ? "show" : "hide"} ${row.count} instances`;
  }

  expand(row, open) {
    row.kids.hidden = !open;
    row.toggle.setAttribute("aria-expanded", String(open));
    this.count(row, 0);
  }

  // ---- time and zoom -----------------------------------------------------------------

  /** Open bars grow to `now` (epoch seconds). */
  tick(now) {
    if (this.finished || this.start === null) return;
    this.stretch(now);
    for (const seg of this.open) this.draw(seg);
  }

  /** The run ended at `at`: every open bar closes there; later ticks change nothing. */
  finish(at) {
    if (this.finished) return;
    if (this.start === null) this.start = this.end = at;
    for (const row of this.rows.values()) {
      if (row.live.run) row.live.run.state = "ended";
      this.closeAll(row, at);
    }
    this.finished = true;
    this.stretch(at);
    if (this.fitting) this.fit(); // the whole run, without the room left for growing
  }

  /** The chart reaches `at`: wider track, new ticks; a fitting chart rescales. */
  stretch(at) {
    if (at <= this.end) return;
    this.end = at;
    const target = this.fitScale(1.25); // room to grow: a live run rescales now and then
    const over = this.span() * this.pps > this.room() || this.pps < target / 2;
    if (this.fitting && over && target !== this.pps) this.scale(target); // hidden: no room, no rescale
    else this.layout();
  }

  span() {
    return Math.max(this.end - this.start, 0);
  }

  /** The px the track can show without scrolling. */
  room() {
    return Math.max(this.width - LABEL_W - PAD, 0); // the observed width: no forced layout
  }

  fitScale(headroom) {
    const room = this.room();
    if (!room) return this.pps; // not laid out (hidden): keep the scale
    return room / Math.max(this.span() * headroom, 1);
  }

  fit() {
    this.fitting = true;
    this.scale(this.fitScale(1));
  }

  zoomBy(factor, anchorPx) {
    this.fitting = false;
    const anchor = anchorPx ?? this.scroller.clientWidth / 2;
    const at = (this.scroller.scrollLeft + anchor - LABEL_W) / this.pps;
    this.scale(this.pps * factor);
    this.scroller.scrollLeft = at * this.pps + LABEL_W - anchor; // keep that instant in place
  }

  /** ctrl+wheel zooms about the pointer; a plain wheel scrolls as usual. */
  wheel(event) {
    if (!event.ctrlKey) return;
    event.preventDefault();
    const box = this.scroller.getBoundingClientRect();
    this.zoomBy(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left);
  }

  scale(pps) {
    this.pps = Math.min(Math.max(pps, MIN_PPS), MAX_PPS);
    for (const seg of this.segs) this.draw(seg);
    this.layout();
  }

  /** The track's width and the axis for the current span and scale. */
  layout() {
    const width = Math.max(this.span() * this.pps + PAD, this.room() + PAD);
    this.root.style.setProperty("--tl-w", `${Math.ceil(width)}px`);
    this.root.dataset.pps = String(this.pps);
    this.drawAxis(width);
  }

  drawAxis(width) {
    const step = STEPS.find((s) => s * this.pps >= TICK_PX) ?? STEPS[STEPS.length - 1];
    const key = `${step}/${this.pps}/${Math.floor(width / (step * this.pps))}`;
    if (key === this.axisKey) return; // same ticks as drawn
    this.axisKey = key;
    const ticks = [];
    for (let t = 0; t * this.pps <= width; t += step) {
      const tick = el("div", "tl-tick", formatOffset(t));
      tick.style.left = `${t * this.pps}px`;
      ticks.push(tick);
    }
    this.axis.replaceChildren(...ticks);
  }

  // ---- segments ----------------------------------------------------------------------

  /** Place a segment from its times at the current scale, and say what it is. */
  draw(seg) {
    const to = seg.to ?? Math.max(this.end, seg.from);
    const left = (seg.from - this.start) * this.pps;
    seg.node.style.left = `${left}px`;
    if (seg.kind !== "skip") seg.node.style.width = `${Math.max((to - seg.from) * this.pps, 1)}px`;
    if (seg.kind === "run") seg.node.className = `seg seg-run st-${seg.state || "running"}`;
    seg.node.title = this.describe(seg, to);
  }

  describe(seg, to) {
    const parts = [KIND_NAMES[seg.kind]];
    if (seg.kind !== "skip") {
      parts.push(formatDuration(to - seg.from) + (seg.to === null ? " so far" : ""));
    }
    parts.push(`attempt ${seg.attempt}`);
    if (seg.state) parts.push(seg.state);
    if (seg.note) parts.push(seg.note);
    return parts.join(" · ");
  }
}

const KIND_NAMES = {
  wait: "waiting for a slot",
  run: "running",
  backoff: "backoff before retrying",
  paused: "paused for approval",
  skip: "skipped",
};
