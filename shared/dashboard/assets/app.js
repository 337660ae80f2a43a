// crtask dashboard. Plain JavaScript, no dependencies.
//
// Every string that comes from the server (task names, commit messages,
// log lines, reasons) is written with textContent or as an SVG text node's
// data: never parsed as HTML. The API token lives in this tab's
// sessionStorage and goes out only as the Authorization header.
"use strict";

const TOKEN_KEY = "crtask.token";
const TERMINAL = ["Succeeded", "Failed", "Canceled", "Error", "Timeout"];
const STATUSES = ["Queued", "Started", "Running"].concat(TERMINAL);
const TRIGGERS = ["Manual", "Commit", "PullRequest", "ImageUpdate", "Timer", "Patch"];
const SVG = "http://www.w3.org/2000/svg";

let timer = null; // the current page's refresh
let generation = 0; // bumps on every navigation; stale callbacks stop

// ---------- DOM helpers (text only) ----------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) add(e, c);
  return e;
}

function add(parent, c) {
  if (c === null || c === undefined || c === false) return;
  if (Array.isArray(c)) { c.forEach((x) => add(parent, x)); return; }
  parent.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

function statusBadge(s) { return el("span", { class: "status s-" + safeClass(s), text: s }); }
function outcomeBadge(o) { return el("span", { class: "status o-" + safeClass(o), text: o }); }
function safeClass(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, ""); }

// Terminal escapes (colours) are dropped; the text stays text.
function plain(s) { return String(s).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""); }

function when(t) {
  if (!t) return "-";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function seconds(a, b) {
  if (!a) return null;
  const end = b ? new Date(b) : new Date();
  return Math.max(0, (end - new Date(a)) / 1000);
}

function duration(a, b) {
  const s = seconds(a, b);
  if (s === null) return "-";
  if (s < 60) return s.toFixed(1) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}

function runLink(id) { return el("a", { href: "#/run/" + encodeURIComponent(id), class: "mono", text: id }); }

function triggerText(t) {
  if (!t) return "-";
  switch (t.type) {
    case "Commit": return "Commit " + short(t.commit) + " on " + t.branch + (t.repository ? " (" + t.repository + ")" : "");
    case "PullRequest": return "PR #" + t.number + " " + short(t.commit);
    case "ImageUpdate": return "Image " + t.image + " moved" + (t.cause ? " (" + t.cause + ")" : "");
    case "Timer": return "Timer " + t.timerName + " at " + when(t.scheduledTime);
    case "Patch": return "Patch schedule at " + when(t.scheduledTime);
    default: return t.type;
  }
}

function short(s) { return s ? String(s).slice(0, 12) : ""; }

// ---------- API ----------

class AuthError extends Error {}

async function api(path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
  if (r.status === 401) {
    let msg = "";
    try { msg = (await r.json()).error; } catch (_) { /* not JSON */ }
    showLogin(token ? "The token was refused: " + msg : "");
    throw new AuthError(msg);
  }
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

async function json(path) { return (await api(path)).json(); }

function showLogin(why) {
  document.getElementById("main").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = why || "";
  document.getElementById("token").focus();
}

function hideLogin() {
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
}

// ---------- pages ----------

function page(title, ...children) {
  const main = document.getElementById("main");
  clear(main);
  add(main, el("h1", { text: title }));
  add(main, children);
  return main;
}

function fail(e) {
  if (e instanceof AuthError) return;
  const main = document.getElementById("main");
  add(main, el("p", { class: "error", text: "Error: " + e.message }));
}

// Calls fn now and every `ms` until it answers false or the page changes.
// A failed call (the server restarting, a network blip) is shown and tried
// again later; a refused token stops it (the login form is up).
function every(ms, fn) {
  const gen = generation;
  const note = el("p", { class: "error", hidden: "hidden" });
  document.getElementById("main").appendChild(note);
  const tick = async () => {
    if (gen !== generation) return;
    let again = true;
    let wait = ms;
    try {
      again = (await fn()) !== false;
      note.hidden = true;
    } catch (e) {
      if (e instanceof AuthError) return;
      note.textContent = "Error: " + e.message + " (retrying)";
      note.hidden = false;
      wait = Math.max(ms, 5000);
    }
    if (again && gen === generation) timer = setTimeout(tick, wait);
  };
  tick();
}

function query() {
  const h = location.hash;
  const i = h.indexOf("?");
  return new URLSearchParams(i < 0 ? "" : h.slice(i + 1));
}

// Runs: live status, filters by task, trigger and status.
async function runsPage() {
  const q = query();
  const tasks = await json("/api/v1/tasks");
  const select = (id, label, values, current) =>
    el("label", {}, label + " ",
      el("select", { id, onchange: applyFilters },
        el("option", { value: "", text: "any" }),
        values.map((v) => el("option", { value: v, text: v, selected: v === current ? "selected" : null }))));
  const table = el("table", { id: "runs" },
    el("thead", {}, el("tr", {}, ["Run", "Task", "Type", "Trigger", "Status", "Started", "Duration", "Images"].map((h) => el("th", { text: h })))),
    el("tbody"));
  page("Runs",
    el("div", { class: "filters" },
      select("f-task", "Task", tasks.map((t) => t.name), q.get("task")),
      select("f-trigger", "Trigger", TRIGGERS, q.get("trigger")),
      select("f-status", "Status", STATUSES, q.get("status")),
      el("span", { class: "muted", id: "runs-updated" })),
    table);
  every(2000, async () => {
    const p = new URLSearchParams({ top: "200" });
    if (q.get("task")) p.set("task", q.get("task"));
    if (q.get("status")) p.set("status", q.get("status"));
    let runs = await json("/api/v1/runs?" + p);
    if (q.get("trigger")) runs = runs.filter((r) => r.trigger && r.trigger.type === q.get("trigger"));
    const body = table.tBodies[0];
    clear(body);
    for (const r of runs) {
      body.appendChild(el("tr", { "data-run": r.runId },
        el("td", {}, runLink(r.runId)),
        el("td", { text: r.task || "-" }),
        el("td", { text: r.runType }),
        el("td", { text: triggerText(r.trigger) }),
        el("td", {}, statusBadge(r.status)),
        el("td", { text: when(r.startTime || r.createTime) }),
        el("td", { text: duration(r.startTime, r.finishTime) }),
        el("td", { class: "mono", text: (r.outputImages || []).map((o) => o.repository + ":" + o.tag).join(", ") })));
    }
    if (!runs.length) body.appendChild(el("tr", {}, el("td", { colspan: "8", class: "muted", text: "No runs match." })));
    document.getElementById("runs-updated").textContent = "updated " + new Date().toLocaleTimeString();
  });
}

function applyFilters() {
  const p = new URLSearchParams();
  for (const [id, key] of [["f-task", "task"], ["f-trigger", "trigger"], ["f-status", "status"]]) {
    const v = document.getElementById(id).value;
    if (v) p.set(key, v);
  }
  location.hash = "#/runs" + (p.toString() ? "?" + p : "");
}

// A run: status, timeline of steps with their `when`, images, live log.
async function runPage(id) {
  const head = el("dl", { class: "kv", id: "run-summary" });
  const timeline = el("div", { class: "timeline", id: "timeline" });
  const images = el("div", { id: "images" });
  const log = el("pre", { id: "log" });
  const liveNote = el("span", { id: "log-state", class: "muted" });
  page("Run " + id, head,
    el("h2", { text: "Steps" }), timeline,
    el("h2", { text: "Images" }), images,
    el("h2", {}, "Log ", liveNote), log);
  let offset = 0;
  let text = "";
  let finished = false;
  const seen = new Map();
  const decoder = new TextDecoder();
  every(1000, async () => {
    const run = await json("/api/v1/runs/" + encodeURIComponent(id));
    const done = TERMINAL.includes(run.status);
    // Read the log up to now; once the run has ended, read it once more.
    for (;;) {
      const r = await api("/api/v1/runs/" + encodeURIComponent(id) + "/log?offset=" + offset);
      const buf = new Uint8Array(await r.arrayBuffer());
      if (!buf.length) break;
      offset += buf.length;
      const chunk = plain(decoder.decode(buf, { stream: true }));
      text += chunk;
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.appendChild(document.createTextNode(chunk));
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
    summary(head, run);
    drawTimeline(timeline, run, text, seen);
    drawImages(images, run);
    liveNote.textContent = done ? "(complete)" : "(live: updating while the run is in progress)";
    liveNote.className = done ? "muted" : "live";
    if (done && finished) return false;
    finished = done;
    return true;
  });
}

function summary(dl, run) {
  clear(dl);
  const row = (k, v) => [el("dt", { text: k }), el("dd", {}, v)];
  add(dl, [
    row("Status", statusBadge(run.status)),
    row("Task", run.task ? el("a", { href: "#/runs?task=" + encodeURIComponent(run.task), text: run.task }) : "-"),
    row("Type", run.runType),
    row("Trigger", triggerText(run.trigger)),
    row("Platform", run.platform || "-"),
    row("Created", when(run.createTime)),
    row("Started", when(run.startTime)),
    row("Finished", when(run.finishTime)),
    row("Duration", duration(run.startTime, run.finishTime)),
    run.error ? row("Error", el("span", { class: "error", text: run.error })) : null,
  ]);
}

// Steps from the log while the run is in progress (the run records its
// steps when it ends): "==> step ID: started" / "==> step ID: <status>".
// `seen` keeps when this page first saw each line, across polls.
function stepsFromLog(text, seen) {
  const now = new Date().toISOString();
  for (const line of text.split("\n")) {
    const m = /^==> step ([A-Za-z0-9_.-]+): (\S+)/.exec(line);
    if (!m) continue;
    let s = seen.get(m[1]);
    if (!s) { s = { id: m[1], status: "Running", startTime: now, finishTime: null, live: true }; seen.set(m[1], s); }
    if (s.finishTime) continue;
    if (m[2] === "skipped") { s.status = "Canceled"; s.finishTime = now; }
    else if (m[2] !== "started" && STATUSES.includes(m[2])) { s.status = m[2]; s.finishTime = now; }
  }
  return Array.from(seen.values());
}

function drawTimeline(box, run, logText, seen) {
  clear(box);
  let steps = run.steps || [];
  if (!steps.length && !TERMINAL.includes(run.status)) steps = stepsFromLog(logText, seen);
  if (!steps.length) { add(box, el("p", { class: "muted", text: "No steps yet." })); return; }
  const times = steps.flatMap((s) => [s.startTime, s.finishTime]).filter(Boolean).map((t) => +new Date(t));
  const t0 = run.startTime ? Math.min(+new Date(run.startTime), ...times) : Math.min(...times);
  const t1 = Math.max(run.finishTime ? +new Date(run.finishTime) : Date.now(), ...times, t0 + 1);
  const span = t1 - t0;
  for (const s of steps) {
    const a = s.startTime ? +new Date(s.startTime) : null;
    const b = s.finishTime ? +new Date(s.finishTime) : (a !== null ? Date.now() : null);
    const track = el("div", { class: "tl-track" });
    if (a !== null) {
      const bar = el("div", { class: "tl-bar s-" + safeClass(s.status), title: s.id + ": " + s.status + ", " + duration(s.startTime, s.finishTime) });
      bar.style.left = ((a - t0) / span * 100).toFixed(2) + "%";
      bar.style.width = (Math.max(b - a, 0) / span * 100).toFixed(2) + "%";
      track.appendChild(bar);
    }
    const overlapped = steps.filter((o) => o !== s && o.startTime && a !== null && overlaps(a, b, +new Date(o.startTime), o.finishTime ? +new Date(o.finishTime) : Date.now())).map((o) => o.id);
    const deps = s.when && s.when.length ? "after " + s.when.join(", ") : "starts at once";
    box.appendChild(el("div", { class: "tl-row", "data-step": s.id },
      el("div", {}, el("span", { class: "mono", text: s.id }), " ", statusBadge(s.status)),
      track,
      el("div", { class: "tl-when" },
        el("div", { class: "tl-deps", text: s.live ? (s.finishTime ? "done (times as this page saw them)" : "in progress") : deps }),
        overlapped.length ? el("div", { class: "tl-overlap", text: "overlapped " + overlapped.join(", ") }) : null)));
  }
  add(box, el("div", { class: "tl-axis" }, el("span", { text: "0 s" }), el("span", { text: (span / 1000).toFixed(1) + " s" })));
}

function overlaps(a1, b1, a2, b2) { return a1 < b2 && a2 < b1; }

function drawImages(box, run) {
  clear(box);
  const outs = run.outputImages || [];
  const bases = run.baseImages || [];
  add(box, el("table", { id: "outputs" },
    el("thead", {}, el("tr", {}, ["Output image", "Digest"].map((h) => el("th", { text: h })))),
    el("tbody", {}, outs.length ? outs.map((o) => el("tr", {},
      el("td", { class: "mono", text: o.registry + "/" + o.repository + ":" + o.tag }),
      el("td", { class: "mono", text: o.digest }))) : el("tr", {}, el("td", { colspan: "2", class: "muted", text: "none" })))));
  add(box, el("table", { id: "bases" },
    el("thead", {}, el("tr", {}, ["Base image", "Digest", "Runtime"].map((h) => el("th", { text: h })))),
    el("tbody", {}, bases.length ? bases.map((b) => el("tr", {},
      el("td", { class: "mono", text: b.image }),
      el("td", { class: "mono", text: b.digest }),
      el("td", { text: b.runtime ? "yes" : "build-time" }))) : el("tr", {}, el("td", { colspan: "3", class: "muted", text: "none" })))));
}

// Events: what came in and what was done with it, and why.
async function eventsPage() {
  const table = el("table", { id: "events" },
    el("thead", {}, el("tr", {}, ["Received", "Source", "Outcome", "Reason", "Runs", "About"].map((h) => el("th", { text: h })))),
    el("tbody"));
  page("Events", table);
  every(3000, async () => {
    const events = await json("/api/v1/events?top=200");
    const body = table.tBodies[0];
    clear(body);
    for (const e of events) {
      body.appendChild(el("tr", { "data-event": e.id },
        el("td", { text: when(e.receivedAt) }),
        el("td", { text: e.source }),
        el("td", {}, outcomeBadge(e.outcome)),
        el("td", { class: "reason", text: e.reason }),
        el("td", {}, (e.runs || []).map((r, i) => [i ? ", " : "", runLink(r)])),
        el("td", { class: "mono", text: about(e.detail) })));
    }
    if (!events.length) body.appendChild(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No events yet." })));
  });
}

function about(d) {
  if (!d || typeof d !== "object") return "";
  return Object.entries(d).filter(([, v]) => v !== null && typeof v !== "object")
    .map(([k, v]) => k + "=" + v).join(" ");
}

// Tasks with their triggers and timers (next fire time).
async function tasksPage() {
  const [tasks, timers] = await Promise.all([json("/api/v1/tasks"), json("/api/v1/timers")]);
  const triggers = (t) => [
    t.commitTriggerEnabled ? "commit" + (t.branch ? " (" + t.branch + ")" : "") : null,
    t.pullRequestTriggerEnabled ? "pull request" : null,
    t.baseImageTriggerEnabled ? "base image (" + t.baseImageTriggerType + ")" : null,
    (t.timers || []).length ? "timers" : null,
  ].filter(Boolean).join(", ") || "manual only";
  page("Tasks",
    el("table", { id: "tasks" },
      el("thead", {}, el("tr", {}, ["Task", "Context", "File", "Images", "Triggers", "Runs"].map((h) => el("th", { text: h })))),
      el("tbody", {}, tasks.map((t) => el("tr", { "data-task": t.name },
        el("td", { text: t.name }),
        el("td", { class: "mono", text: t.context }),
        el("td", { class: "mono", text: t.file }),
        el("td", { class: "mono", text: (t.images || []).join(", ") }),
        el("td", { text: triggers(t) }),
        el("td", {}, el("a", { href: "#/runs?task=" + encodeURIComponent(t.name), text: "runs" })))))),
    el("h2", { text: "Timers" }),
    el("table", { id: "timers" },
      el("thead", {}, el("tr", {}, ["Task", "Timer", "Schedule (UTC)", "Enabled", "Last fired", "Next fire"].map((h) => el("th", { text: h })))),
      el("tbody", {}, timers.length ? timers.map((t) => el("tr", { "data-timer": t.task + "/" + t.timer },
        el("td", { text: t.task }),
        el("td", { text: t.timer }),
        el("td", { class: "mono", text: t.schedule }),
        el("td", { text: t.enabled ? "yes" : "no" }),
        el("td", { text: when(t.lastFired) }),
        el("td", { class: "next-fire", text: when(t.nextFire) }))) : el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No timers." })))));
}

// The image dependency graph: columns by level, click an image to see what
// rebuilds if it moves.
async function graphPage() {
  const g = await json("/api/v1/graph");
  const list = el("ul", { id: "rebuilds" });
  for (const n of g.nodes.filter((n) => n.kind === "image")) {
    list.appendChild(el("li", { "data-image": n.label },
      el("span", { class: "mono", text: n.label }), " moves: ",
      n.rebuilds && n.rebuilds.length ? "rebuilds " + n.rebuilds.join(", ") : "rebuilds nothing"));
  }
  const picture = drawGraph(g);
  page("Image dependency graph",
    el("p", { class: "muted", text: "Images (blue) and tasks (green). Solid lines start runs; dashed ones do not (trigger off, or a build-time base of a Runtime-only task). Click an image to see what rebuilds if it moves." }),
    picture,
    el("h2", { text: "What rebuilds if an image moves" }),
    g.nodes.length ? list : el("p", { class: "muted", text: "No tasks with known base images yet." }));
}

function drawGraph(g) {
  const W = 230, H = 30, GX = 60, GY = 14;
  const cols = new Map();
  for (const n of g.nodes) {
    if (!cols.has(n.level)) cols.set(n.level, []);
    cols.get(n.level).push(n);
  }
  const pos = new Map();
  let rows = 0;
  for (const [level, nodes] of cols) {
    nodes.forEach((n, i) => pos.set(n.id, { x: 10 + level * (W + GX), y: 10 + i * (H + GY) }));
    rows = Math.max(rows, nodes.length);
  }
  const width = 20 + Math.max(1, cols.size) * (W + GX);
  const height = 20 + Math.max(1, rows) * (H + GY);
  const s = svg("svg", { class: "graph", id: "graph", width, height, viewBox: "0 0 " + width + " " + height });
  for (const e of g.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    s.appendChild(svg("line", { x1: a.x + W, y1: a.y + H / 2, x2: b.x, y2: b.y + H / 2, class: e.triggers ? "" : "quiet" }));
  }
  const groups = new Map();
  for (const n of g.nodes) {
    const p = pos.get(n.id);
    const grp = svg("g", { class: "node n-" + safeClass(n.kind), "data-node": n.id });
    grp.appendChild(svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 4 }));
    const label = n.label.length > 34 ? "\u2026" + n.label.slice(-33) : n.label;
    grp.appendChild(svg("text", { x: p.x + 8, y: p.y + 19 }, label));
    grp.appendChild(svg("title", {}, n.label + (n.rebuilds && n.rebuilds.length ? "\nrebuilds: " + n.rebuilds.join(", ") : "")));
    grp.addEventListener("click", () => {
      const hot = new Set((n.rebuilds || []).map((t) => "task:" + t));
      hot.add(n.id);
      for (const [id, other] of groups) other.classList.toggle("hot", hot.has(id));
    });
    groups.set(n.id, grp);
    s.appendChild(grp);
  }
  return s;
}

// ---------- routing ----------

const routes = [
  [/^#\/run\/([^/?]+)/, (m) => runPage(decodeURIComponent(m[1])), "nav-runs"],
  [/^#\/events/, eventsPage, "nav-events"],
  [/^#\/tasks/, tasksPage, "nav-tasks"],
  [/^#\/graph/, graphPage, "nav-graph"],
  [/^#\/runs/, runsPage, "nav-runs"],
];

async function route() {
  generation += 1;
  if (timer) { clearTimeout(timer); timer = null; }
  const hash = location.hash || "#/runs";
  for (const [re, fn, nav] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.id === nav));
    try { hideLogin(); await fn(m); } catch (e) { fail(e); }
    return;
  }
  location.hash = "#/runs";
}

function start() {
  // `crtask dashboard` opens /#token=...: keep it in this tab, drop it from the address.
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#/runs");
  }
  const out = document.getElementById("signout");
  out.hidden = !sessionStorage.getItem(TOKEN_KEY);
  out.addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); out.hidden = true; showLogin(""); });
  document.getElementById("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = document.getElementById("token").value.trim();
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    document.getElementById("token").value = "";
    out.hidden = false;
    route();
  });
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", start);
