// Following an event stream of the API (Server-Sent Events) from a known number on.
// One EventSource per tab: browsers allow six connections per host over HTTP/1.1. The page
// starts from the number its snapshot was taken at (?after=N); on a dropped connection the
// browser reconnects by itself with Last-Event-ID, so nothing is missed or applied twice.

export const KINDS = [
  "run_started", "step_ready", "step_waiting", "step_started", "step_retrying",
  "step_succeeded", "step_failed", "step_skipped", "step_cancelled", "step_paused",
  "step_resumed", "run_finished",
];

export function follow(url, after, onEvent, onEnd) {
  const source = new EventSource(`${url}${url.includes("?") ? "&" : "?"}after=${after}`);
  let last = after;
  const take = (message) => {
    const number = Number(message.lastEventId);
    if (number && number <= last) return; // already applied
    if (number) last = number;
    onEvent(JSON.parse(message.data));
  };
  for (const kind of KINDS) source.addEventListener(kind, take);
  source.addEventListener("end", () => {
    source.close();
    if (onEnd) onEnd();
  });
  return source;
}

// Coalesces calls per key: fn(key) runs once, `wait` ms after the last call for that key.
export function debounced(fn, wait) {
  const timers = new Map();
  return (key) => {
    clearTimeout(timers.get(key));
    timers.set(key, setTimeout(() => { timers.delete(key); fn(key); }, wait));
  };
}
