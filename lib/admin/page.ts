/**
 * The status page: one HTML document with its CSS and script inline, so the
 * program serves it with no file beside it. It fetches /status.json every
 * two seconds and draws the ring (SVG, each node's arcs in its colour; a
 * node that is down is drawn faded and hatched) and one card per node:
 * status, keys, ring share, ops/s and p99 over the last minute, memory. The
 * nodes are the live members (joined ones included); the header gives the
 * membership epoch and any range movement under way (`#movement`). The
 * layout is one column on a phone and a ring beside the cards on a desktop.
 * Each card carries `data-node`, `data-state` (up, joining, down) and
 * `data-member` (NORMAL, JOINING, LEAVING) for tests and scripts, and two
 * sparklines of the node's last five minutes (ops/s and p99, five-second
 * points, kept by the node itself).
 *
 * Below, one panel per concern (`#panels`; a new concern adds a section):
 * the key inspector (`#inspect`: a key's place on the ring, drawn as a
 * marker, its holders and each copy's version, size and state, never its
 * value; it sends the client token typed in, if any) and the events list
 * (`#events`: what every answering node saw, newest first, with refused
 * calls counted in `#refused`). Rows carry `data-node`, `data-version` and
 * `data-kind` for tests and scripts.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kvstore status</title>
<style>
  :root { --bg:#0f1419; --panel:#1a2129; --text:#e6e9ed; --muted:#8b96a3; --up:#3fb950; --joining:#d29922; --down:#f85149; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--text); }
  header { padding:14px 18px; border-bottom:1px solid #263040; display:flex; flex-wrap:wrap; gap:4px 16px; align-items:baseline; }
  h1 { font-size:20px; margin:0; }
  .sub { color:var(--muted); font-size:13px; }
  #movement { display:none; background:#3a2f12; color:#f2cc60; padding:8px 18px; }
  #error { display:none; background:#3d1518; color:#ffb3ad; padding:8px 18px; }
  main { display:grid; grid-template-columns:1fr; gap:18px; padding:18px; max-width:1200px; margin:0 auto; }
  @media (min-width: 820px) { main { grid-template-columns: minmax(300px, 420px) 1fr; align-items:start; } }
  .panel { background:var(--panel); border-radius:12px; padding:14px; }
  #ring svg { width:100%; height:auto; max-width:420px; display:block; margin:0 auto; }
  .legend { display:flex; flex-wrap:wrap; gap:8px 14px; justify-content:center; margin-top:8px; font-size:13px; }
  .sw { display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:5px; vertical-align:-1px; }
  #nodes { display:grid; grid-template-columns:repeat(auto-fill, minmax(240px, 1fr)); gap:12px; }
  .node { background:var(--panel); border-radius:12px; padding:12px 14px; border-left:6px solid var(--c); }
  .node[data-state="down"] { opacity:.75; border-left-style:dashed; }
  .node h2 { font-size:17px; margin:0 0 2px; display:flex; justify-content:space-between; align-items:center; gap:8px; }
  .badge { font-size:12px; font-weight:600; padding:2px 8px; border-radius:999px; color:#0f1419; }
  .badge.up { background:var(--up); } .badge.joining { background:var(--joining); } .badge.down { background:var(--down); }
  .addr { color:var(--muted); font-size:12px; margin-bottom:8px; }
  dl { display:grid; grid-template-columns:1fr 1fr; gap:6px 12px; margin:0; }
  dt { color:var(--muted); font-size:12px; } dd { margin:0; font-variant-numeric:tabular-nums; font-size:16px; }
  .why { color:#ffb3ad; font-size:12px; margin-top:8px; }
  .spark { display:grid; grid-template-columns:auto 1fr; gap:2px 8px; align-items:center; margin-top:10px; font-size:11px; color:var(--muted); }
  .spark svg { width:100%; height:26px; display:block; }
  #panels { display:grid; grid-template-columns:1fr; gap:18px; padding:0 18px 18px; max-width:1200px; margin:0 auto; }
  @media (min-width: 820px) { #panels { grid-template-columns: minmax(300px, 1fr) minmax(300px, 1fr); align-items:start; } }
  #panels h2 { font-size:16px; margin:0 0 10px; }
  #inspect form { display:flex; flex-wrap:wrap; gap:8px; }
  #inspect input { flex:1 1 140px; min-width:0; background:#0f1419; color:var(--text); border:1px solid #30363d; border-radius:8px; padding:7px 9px; font:inherit; }
  #inspect button { background:#238636; color:#fff; border:0; border-radius:8px; padding:7px 14px; font:inherit; cursor:pointer; }
  #inspect-summary { margin:10px 0 6px; font-size:13px; }
  .agree { color:var(--up); font-weight:600; } .disagree { color:var(--down); font-weight:600; }
  .tablewrap { overflow-x:auto; }
  table { border-collapse:collapse; width:100%; font-size:13px; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:4px 6px; border-bottom:1px solid #263040; white-space:nowrap; }
  th { color:var(--muted); font-weight:500; }
  tr.stale td { color:#f2cc60; }
  #refused { color:var(--muted); font-size:13px; margin:0 0 8px; }
  #event-list { list-style:none; margin:0; padding:0; max-height:340px; overflow-y:auto; font-size:13px; }
  #event-list li { padding:5px 0; border-bottom:1px solid #263040; display:grid; grid-template-columns:auto auto 1fr; gap:8px; align-items:baseline; }
  #event-list time { color:var(--muted); font-variant-numeric:tabular-nums; }
  .kind { font-size:11px; font-weight:600; padding:1px 7px; border-radius:999px; background:#30363d; }
  .kind.failure, .kind.removal { background:#5c1d1f; } .kind.suspicion, .kind.clock { background:#4b3a12; }
  .kind.recovery, .kind.join { background:#1b4426; } .kind.hints { background:#1f3a5f; }
  .seen { color:var(--muted); font-size:11px; }
</style>
</head>
<body>
<header><h1 id="title">kvstore</h1><span class="sub" id="meta">loading…</span></header>
<div id="movement" role="status"></div>
<div id="error" role="alert"></div>
<main>
  <section class="panel" id="ring" aria-label="hash ring"><svg viewBox="0 0 240 240" role="img"></svg><div class="legend" id="legend"></div></section>
  <section id="nodes" aria-label="nodes"></section>
</main>
<div id="panels">
  <section class="panel" id="inspect" aria-label="key inspector">
    <h2>Key inspector</h2>
    <form id="inspect-form" autocomplete="off">
      <input id="inspect-key" placeholder="key" aria-label="key" required>
      <input id="inspect-token" type="password" placeholder="client token (if the cluster sets one)" aria-label="client token">
      <button type="submit">Inspect</button>
    </form>
    <div id="inspect-summary" role="status"></div>
    <div class="tablewrap"><table id="inspect-copies" hidden><thead><tr><th>node</th><th>role</th><th>state</th><th>version</th><th>size</th><th>expires</th></tr></thead><tbody></tbody></table></div>
  </section>
  <section class="panel" id="events" aria-label="events">
    <h2>Events</h2>
    <p id="refused"></p>
    <ol id="event-list"></ol>
  </section>
</div>
<script>
const COLORS = ["#58a6ff", "#f778ba", "#56d364", "#e3b341", "#bc8cff", "#ff7b72", "#39c5cf", "#ffa657"];
const STATE_TEXT = { up: "ACTIVE", joining: "JOINING", down: "DOWN" };
const fmt = (n, d = 0) => Number(n).toLocaleString(undefined, { maximumFractionDigits: d, minimumFractionDigits: d });
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function point(frac, r) {
  const a = frac * 2 * Math.PI - Math.PI / 2;
  return [120 + r * Math.cos(a), 120 + r * Math.sin(a)];
}

function arcPath(from, to, r) {
  const [x1, y1] = point(from, r), [x2, y2] = point(to, r);
  return "M" + x1.toFixed(2) + " " + y1.toFixed(2) + " A" + r + " " + r + " 0 " + (to - from > 0.5 ? 1 : 0) + " 1 " + x2.toFixed(2) + " " + y2.toFixed(2);
}

function drawRing(s, color) {
  const state = Object.fromEntries(s.nodes.map((n) => [n.id, n.state]));
  const up = s.nodes.filter((n) => n.state === "up").length;
  let out = '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#f85149" opacity=".5"/></pattern></defs>';
  out += '<circle cx="120" cy="120" r="92" fill="none" stroke="#263040" stroke-width="26"/>';
  for (const a of s.ring) {
    const down = state[a.node] === "down";
    out += '<path class="arc" data-node="' + esc(a.node) + '" d="' + arcPath(a.from, a.to, 92) + '" fill="none" stroke="' + color[a.node] + '" stroke-width="26"' + (down ? ' stroke-opacity=".25"' : "") + "/>";
    if (down) out += '<path d="' + arcPath(a.from, a.to, 92) + '" fill="none" stroke="url(#hatch)" stroke-width="26"/>';
  }
  if (inspected) {
    const [x1, y1] = point(inspected.position, 74), [x2, y2] = point(inspected.position, 112);
    out += '<line id="key-marker" x1="' + x1.toFixed(2) + '" y1="' + y1.toFixed(2) + '" x2="' + x2.toFixed(2) + '" y2="' + y2.toFixed(2) + '" stroke="#fff" stroke-width="3" stroke-linecap="round"/>';
  }
  out += '<text x="120" y="116" text-anchor="middle" fill="#e6e9ed" font-size="26" font-weight="700">' + up + "/" + s.nodes.length + "</text>";
  out += '<text x="120" y="138" text-anchor="middle" fill="#8b96a3" font-size="12">nodes up · rf ' + s.replication_factor + "</text>";
  document.querySelector("#ring svg").innerHTML = out;
  document.getElementById("legend").innerHTML = s.nodes.map((n) =>
    '<span><span class="sw" style="background:' + color[n.id] + '"></span>' + esc(n.id) + " " + fmt(n.ring_share * 100, 1) + "%</span>").join("");
}

let inspected;

function spark(values, color, label, unit) {
  if (!values || !values.length) return "";
  const max = Math.max(...values, 0);
  const pts = values.map((v, i) => (i * 100 / (values.length - 1)).toFixed(1) + "," + (24 - (max ? v / max : 0) * 22).toFixed(1)).join(" ");
  return "<span>" + label + " · max " + fmt(max, max < 10 ? 1 : 0) + unit + '</span><svg viewBox="0 0 100 26" preserveAspectRatio="none"><polyline points="' + pts +
    '" fill="none" stroke="' + color + '" stroke-width="1.5" vector-effect="non-scaling-stroke"/></svg>';
}

function card(n, color) {
  const why = n.state === "down"
    ? (n.reachable ? "storage unavailable" : "not answering; " + esc(n.responder) + " sees it " + esc(n.seen_as))
    : n.member === "JOINING" ? "joining the cluster: " + fmt(n.moved_records || 0) + " records moved in"
    : n.member === "LEAVING" ? "leaving the cluster: its ranges are being copied to their new holders"
    : n.state === "joining" ? (n.recovering ? "recovering: " + fmt(n.recovered_records) + " records" : esc(n.not_serving_reason || "catching up on hints")) : "";
  const clock = n.id === n.responder ? "reference" : n.clock_offset_ms === undefined ? "–"
    : (n.clock_offset_ms >= 0 ? "+" : "−") + fmt(Math.abs(n.clock_offset_ms) / 1000, 3) + " s ±" + fmt(n.clock_uncertainty_ms) + " ms";
  const v = (x, d) => (n.reachable && x !== undefined ? fmt(x, d) : "–");
  return '<article class="node" style="--c:' + color + '" data-node="' + esc(n.id) + '" data-state="' + n.state + '" data-member="' + esc(n.member) + '">' +
    "<h2><span>" + esc(n.id) + '</span><span class="badge ' + n.state + '">' + STATE_TEXT[n.state] + "</span></h2>" +
    '<div class="addr">' + esc(n.address) + (n.engine ? " · " + esc(n.engine) : "") + "</div>" +
    "<dl><div><dt>keys</dt><dd>" + v(n.keys) + "</dd></div>" +
    "<div><dt>ring share</dt><dd>" + fmt(n.ring_share * 100, 1) + "%</dd></div>" +
    "<div><dt>ops/s (1 min)</dt><dd>" + v(n.ops_per_s, 1) + "</dd></div>" +
    "<div><dt>p99 (1 min)</dt><dd>" + (n.reachable ? (n.p99_ms ? fmt(n.p99_ms, n.p99_ms < 10 ? 1 : 0) + " ms" : "–") : "–") + "</dd></div>" +
    "<div><dt>memory</dt><dd>" + (n.reachable ? fmt(n.rss_bytes / 1048576) + " MB" : "–") + "</dd></div>" +
    "<div><dt>queued / hints</dt><dd>" + v(n.replication_queue) + " / " + v(n.hints_held) + "</dd></div>" +
    '<div><dt>clock vs ' + esc(n.responder) + '</dt><dd class="clock">' + clock + "</dd></div>" +
    "<div><dt>RESP connections</dt><dd>" + v(n.resp_connections) + "</dd></div></dl>" +
    (n.reachable && n.history ? '<div class="spark" data-points="' + n.history.ops_per_s.length + '">' +
      spark(n.history.ops_per_s, color, "ops/s, 5 min", "") + spark(n.history.p99_ms, color, "p99, 5 min", " ms") + "</div>" : "") +
    (why ? '<div class="why">' + why + "</div>" : "") + "</article>";
}

async function refresh() {
  const err = document.getElementById("error");
  try {
    const res = await fetch("/status.json", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const s = await res.json();
    const color = Object.fromEntries(s.nodes.map((n, i) => [n.id, COLORS[i % COLORS.length]]));
    document.getElementById("title").textContent = s.cluster;
    document.getElementById("meta").textContent = "as seen by " + s.responder + " · membership epoch " + s.epoch +
      " · updated " + new Date(s.time).toLocaleTimeString();
    const mv = document.getElementById("movement");
    mv.textContent = s.moving ? "range movement under way: " + s.moving.node + " " + s.moving.state + "; " +
      s.moving.streamed.length + " of " + s.moving.gainers.length + " new holders have streamed their ranges" +
      (s.moving.waiting.length ? " (waiting for " + s.moving.waiting.join(", ") + ")" : "") : "";
    mv.style.display = s.moving ? "block" : "none";
    drawRing(s, color);
    document.getElementById("nodes").innerHTML = s.nodes.map((n) => card({ ...n, responder: s.responder }, color[n.id])).join("");
    drawEvents(s);
    document.body.dataset.loaded = "true";
    err.style.display = "none";
  } catch (e) {
    err.textContent = "cannot reach this node's admin listener: " + e.message;
    err.style.display = "block";
  }
}
function drawEvents(s) {
  const refused = Object.entries(s.refused || {});
  const total = refused.reduce((a, [, n]) => a + n, 0);
  document.getElementById("refused").textContent = "refused calls since start: " + fmt(total) +
    (total ? " (" + refused.map(([k, n]) => esc(k) + " " + fmt(n)).join(", ") + ")" : "");
  document.getElementById("event-list").innerHTML = s.events.map((e) =>
    '<li data-kind="' + esc(e.kind) + '" data-node="' + esc(e.node) + '"><time datetime="' + new Date(e.atMs).toISOString() + '">' +
    new Date(e.atMs).toLocaleTimeString() + '</time><span class="kind ' + esc(e.kind) + '">' + esc(e.kind) + "</span><span>" + esc(e.text) +
    ' <span class="seen">seen by ' + esc(e.seen_by) + "</span></span></li>").join("") || "<li><span></span><span></span><span>nothing yet</span></li>";
}

function version(c) {
  if (c.timestamp_us === undefined) return "–";
  const t = new Date(Math.floor(c.timestamp_us / 1000)).toISOString();
  return '<span title="' + c.timestamp_us + " µs, " + t + '">' + t.slice(11, 23) + String(c.timestamp_us % 1000).padStart(3, "0") +
    "</span> @" + esc(c.version_node);
}

/** An expiry as "in 59 min" / "3 s ago", the exact time on hover. */
function expiry(ms) {
  if (!ms) return "–";
  const d = Math.round((ms - Date.now()) / 1000), a = Math.abs(d);
  const span = a < 120 ? a + " s" : a < 7200 ? Math.round(a / 60) + " min" : a < 172800 ? Math.round(a / 3600) + " h" : Math.round(a / 86400) + " d";
  return '<span title="' + new Date(ms).toISOString() + '">' + (d >= 0 ? "in " + span : span + " ago") + "</span>";
}

function drawInspection(r) {
  inspected = r;
  const missing = r.copies.filter((c) => !c.reachable).length;
  const agree = (r.agree ? '<span class="agree">copies agree</span>' : '<span class="disagree">copies differ</span>') +
    (missing ? " (of those that answered; " + missing + " unreachable)" : "");
  document.getElementById("inspect-summary").innerHTML = "<b>" + esc(r.key) + "</b> at " + fmt(r.position * 100, 2) +
    "% of the ring · owner " + esc(r.owner) + " · replicas " + r.replicas.map(esc).join(", ") + " · " + agree;
  const table = document.getElementById("inspect-copies");
  table.tBodies[0].innerHTML = r.copies.map((c) =>
    '<tr data-node="' + esc(c.node) + '" data-state="' + esc(c.reachable ? c.state : "unreachable") + '" data-version="' +
    (c.timestamp_us === undefined ? "" : c.timestamp_us + "@" + esc(c.version_node)) + '"' + (c.reachable && !c.newest && !r.agree ? ' class="stale"' : "") + ">" +
    "<td>" + esc(c.node) + "</td><td>" + c.role + "</td><td>" + (c.reachable ? c.state : "unreachable") + "</td><td>" + version(c) +
    "</td><td>" + (c.size_bytes === undefined ? "–" : fmt(c.size_bytes) + " B") + "</td><td>" +
    expiry(c.expires_at_ms) + "</td></tr>").join("");
  table.hidden = false;
}

document.getElementById("inspect-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const key = document.getElementById("inspect-key").value;
  const token = document.getElementById("inspect-token").value;
  const out = document.getElementById("inspect-summary");
  try {
    const res = await fetch("/inspect.json?key=" + encodeURIComponent(key), {
      cache: "no-store",
      headers: token ? { authorization: "Bearer " + token } : {},
    });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
    drawInspection(body);
  } catch (e) {
    document.getElementById("inspect-copies").hidden = true;
    out.textContent = "cannot inspect: " + e.message;
  }
  refresh();
});

refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
