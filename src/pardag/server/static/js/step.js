// A step's log, tailing live while its run goes on. New text is appended; the view follows
// the end only when the reader was already at the end, so scrolling back to read stays put.
const log = document.getElementById("log");

async function poll() {
  const [attempt, seq] = log.dataset.after.split(",");
  const answer = await fetch(`${log.dataset.url}?attempt=${attempt}&seq=${seq}`);
  if (!answer.ok) return false;
  const got = await answer.json();
  if (got.text) {
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(document.createTextNode(got.text));
    document.getElementById("log-empty")?.remove();
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
  log.dataset.after = got.after.join(",");
  return !(got.final && !got.text);
}

async function tail() {
  if (await poll().catch(() => true)) setTimeout(tail, 1000);
  else log.dataset.live = "no";
}

if (log && log.dataset.live === "yes") {
  log.scrollTop = log.scrollHeight;
  setTimeout(tail, 1000);
}
