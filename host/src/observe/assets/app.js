// The dashboard: sign-in, a hash router and one render function per page.
// Pages read the JSON API with the operator's token; a page that shows
// running work polls until the work is done.

import * as api from "./api.js";
import { h, badge, table, bar, grid, when, parseMetrics } from "./views.js";

const view = document.getElementById("view");
let timer = null; // the current page's refresh timer
let generation = 0; // bumps on every navigation; stale renders are dropped

const ACTIONS = [
  "power_on_node", "power_off_node", "power_cycle_node", "interrogate_oob", "set_node_boot",
  "verify_site", "prepare_site", "verify_nodes", "prepare_nodes", "deploy_nodes", "destroy_nodes",
];
const TERMINAL = ["complete", "terminated"];

function showSignin(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("signin").hidden = false;
  document.getElementById("signin-error").textContent = message || "";
  view.replaceChildren();
}

async function route() {
  clearTimeout(timer);
  const gen = ++generation;
  if (!api.token()) return showSignin();
  document.getElementById("signin").hidden = true;
  document.getElementById("nav").hidden = false;
  const [page, arg, more] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("current", a.dataset.nav === (page || "tasks"));
  const pages = { tasks: arg ? taskPage : tasksPage, nodes: arg ? nodePage : nodesPage, drivers: driversPage, bmcs: bmcPage };
  const render = pages[page] || tasksPage;
  const refresh = async () => {
    try {
      const again = await render(arg, gen, more);
      if (again && gen === generation) timer = setTimeout(refresh, again);
    } catch (e) {
      if (gen !== generation) return;
      if (e.status === 401) { api.signOut(); return showSignin("That token was refused."); }
      view.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  };
  await refresh();
}

/** Replaces the page's content unless the operator navigated away (absent parts left out). */
function show(gen, ...children) {
  if (gen === generation) view.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
}

// ---- tasks ----------------------------------------------------------------

function startForm(nodes) {
  const error = h("p", { class: "error", role: "alert", id: "start-error" });
  const form = h("form", { class: "inline", id: "start-task" },
    h("label", {}, "Action", h("select", { name: "action" }, ACTIONS.map((a) => h("option", { value: a }, a)))),
    h("label", {}, "Nodes (comma-separated, empty: all)", h("input", { name: "nodes", placeholder: nodes.slice(0, 2).join(",") })),
    h("label", {}, "Design reference", h("input", { name: "design_ref", placeholder: "file:site.yaml" })),
    h("button", { type: "submit" }, "Start task"), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const names = String(f.get("nodes")).split(",").map((s) => s.trim()).filter(Boolean);
    const body = { action: f.get("action") };
    if (names.length) body.node_filter = { filter_set: [{ filter_type: "union", node_names: names }] };
    if (f.get("design_ref")) body.design_ref = f.get("design_ref");
    try {
      const t = await api.post(`${api.API}/tasks`, body);
      location.hash = `#/tasks/${t.task_id}`;
    } catch (e) { error.textContent = e.message; }
  });
  return form;
}

async function tasksPage(_, gen) {
  const [tasks, nodes] = await Promise.all([
    api.get(`${api.API}/tasks?top_level=true&limit=100`),
    api.get(`${api.API}/nodes`),
  ]);
  const rows = tasks.map((t) => ({
    attrs: { "data-task": t.task_id },
    onclick: () => { location.hash = `#/tasks/${t.task_id}`; },
    cells: [t.action, badge(t.status), badge(t.result?.status), t.result?.message || "", when(t.created), t.created_by || "-"],
  }));
  show(gen, h("h2", {}, "Tasks"), startForm(nodes.map((n) => n.name)),
    tasks.length ? table(["action", "status", "result", "message", "created", "by"], rows, { id: "tasks" })
      : h("p", { class: "muted" }, "No tasks yet."));
  return 3000;
}

/** The task's tree (`layers=-1`) → {root, byId}. */
function tree(dict) {
  const byId = {};
  for (const [k, v] of Object.entries(dict)) if (k !== "init_task_id") byId[k] = v;
  return { root: byId[dict.init_task_id], byId };
}

function stepTree(t, byId) {
  const kids = (t.subtask_id_list || []).map((id) => byId[id]).filter(Boolean);
  return h("li", { "data-step": t.action },
    h("strong", {}, t.action), " ", t.node_name ? h("span", { class: "muted" }, t.node_name, " ") : null,
    badge(t.status), " ", badge(t.result?.status),
    kids.length ? h("ul", {}, kids.map((k) => stepTree(k, byId))) : null);
}

async function taskPage(id, gen) {
  const dict = await api.get(`${api.API}/tasks/${encodeURIComponent(id)}?layers=-1`);
  const { root, byId } = tree(dict);
  const all = Object.values(byId);
  const leaves = all.filter((t) => t.node_name);
  const done = leaves.filter((t) => TERMINAL.includes(t.status)).length;
  // Per node: its latest leaf (the step it is at).
  const perNode = new Map();
  for (const t of leaves.sort((a, b) => a.created.localeCompare(b.created))) perNode.set(t.node_name, t);
  const messages = all.flatMap((t) => (t.result?.details?.messageList || []).map((m) => ({ ...m, action: t.action, node: t.node_name })))
    .sort((a, b) => (a.ts || "").localeCompare(b.ts || ""));
  show(gen,
    h("h2", {}, `Task ${root.action} `, badge(root.status)),
    grid([
      ["task id", h("code", { id: "task-id" }, root.task_id)],
      ["status", h("span", { id: "task-status" }, badge(root.status))],
      ["result", h("span", { id: "task-result" }, badge(root.result?.status))],
      ["message", root.result?.message || "-"],
      ["progress", h("span", {}, bar(done, leaves.length), ` ${done}/${leaves.length} node calls done`)],
      ["successes", (root.result?.successes || []).join(", ") || "-"],
      ["failures", (root.result?.failures || []).join(", ") || "-"],
      ["design", root.design_ref || "-"],
      ["created", `${when(root.created)} by ${root.created_by || "-"}`],
    ]),
    h("h3", {}, "Nodes"),
    table(["node", "step", "status", "result", "retries", "message"], [...perNode.values()].map((t) => ({
      attrs: { "data-node": t.node_name },
      onclick: () => { location.hash = `#/nodes/${encodeURIComponent(t.node_name)}`; },
      cells: [t.node_name, t.action, badge(t.status), badge(t.result?.status), t.retry ?? 0, t.result?.message || ""],
    })), { id: "task-nodes" }),
    h("h3", {}, "Steps"), h("ul", { class: "tree", id: "task-tree" }, stepTree(root, byId)),
    h("h3", {}, "Messages"),
    messages.length ? null : h("p", { class: "muted" }, "No messages."),
    table(["time", "action", "node", "message"], messages.map((m) => [when(m.ts), m.action, m.node || "-",
      h("span", { class: m.error ? "error" : "" }, m.message)]), { id: "task-messages", hidden: !messages.length }));
  return TERMINAL.includes(root.status) ? 0 : 1000;
}

// ---- nodes ----------------------------------------------------------------

/** Node name → its subtasks, newest first (from the task list). */
async function nodeTasks() {
  const tasks = await api.get(`${api.API}/tasks?limit=1000`);
  const by = new Map();
  for (const t of tasks) if (t.node_name) (by.get(t.node_name) || by.set(t.node_name, []).get(t.node_name)).push(t);
  for (const list of by.values()) list.sort((a, b) => b.created.localeCompare(a.created));
  return by;
}

async function nodesPage(_, gen) {
  const [nodes, tasks] = await Promise.all([api.get(`${api.API}/nodes`), nodeTasks()]);
  const rows = nodes.map((n) => {
    const last = tasks.get(n.name)?.[0];
    return {
      attrs: { "data-node": n.name },
      onclick: () => { location.hash = `#/nodes/${encodeURIComponent(n.name)}`; },
      cells: [n.name, `${n.oob?.type || "-"} ${n.oob?.address || ""}`, n.power_state || "-", n.boot_device || "-",
        last ? h("span", {}, `${last.action} `, badge(last.result?.status)) : "-", when(n.updated)],
    };
  });
  show(gen, h("h2", {}, "Nodes"), nodes.length
    ? table(["name", "BMC", "power", "boot device", "last action", "updated"], rows, { id: "nodes" })
    : h("p", { class: "muted" }, "No nodes registered."));
  return 5000;
}

/** Timeline entries per page on a node's page. */
const TIMELINE_PAGE = 50;

/** A node's timeline page (`#/nodes/NAME` the newest, `#/nodes/NAME/SEQ` older than SEQ). */
function timeline(name, page, before) {
  const node = encodeURIComponent(name);
  const rows = page.events.map((e) => ({
    attrs: { "data-kind": e.kind, "data-seq": e.seq, "data-outcome": e.outcome || "" },
    onclick: e.task_id ? () => { location.hash = `#/tasks/${e.task_id}`; } : null,
    cells: [when(e.ts), e.kind, e.action || "-", badge(e.outcome), e.duration_ms ?? "-", e.message || ""],
  }));
  const nav = h("p", { class: "pager" },
    before ? h("a", { href: `#/nodes/${node}`, id: "timeline-newest" }, "Newest") : null,
    page.next_before ? h("a", { href: `#/nodes/${node}/${page.next_before}`, id: "timeline-older" }, "Older entries") : null);
  return [
    rows.length ? null : h("p", { class: "muted" }, "Nothing in the timeline yet."),
    table(["time", "kind", "action", "outcome", "ms", "message"], rows, { id: "node-timeline", hidden: !rows.length }),
    nav,
  ];
}

async function nodePage(name, gen, before) {
  const node = encodeURIComponent(name);
  const n = await api.get(`${api.API}/nodes/${node}`);
  const query = `limit=${TIMELINE_PAGE}${before ? `&before=${encodeURIComponent(before)}` : ""}`;
  const [tasks, events, sync, builddata] = await Promise.all([
    nodeTasks(),
    api.get(`${api.API}/nodes/${node}/events?${query}`),
    api.get(`${api.API}/nodes/${node}/sync`),
    api.get(`${api.API}/nodes/${node}/builddata`).catch((e) => (e.status === 404 ? [] : Promise.reject(e))),
  ]);
  const mine = tasks.get(name) || [];
  const s = sync.sync || {};
  show(gen,
    h("h2", { id: "node-name" }, `Node ${n.name}`),
    grid([
      ["BMC", `${n.oob?.type || "-"} ${n.oob?.address || ""}`],
      ["power", h("span", { id: "node-power" }, n.power_state || "-")],
      ["power (BMC)", h("span", { id: "node-observed" }, s.observed_power || "-", s.drift ? h("span", { class: "error" }, " drift") : null)],
      ["maintenance", h("span", { id: "node-maintenance" }, s.maintenance ? `${s.maintenance}: ${s.maintenance_reason || ""}` : "-")],
      ["boot device", h("span", { id: "node-boot" }, n.boot_device || "-")],
      ["last action", mine[0] ? h("span", { id: "node-last" }, `${mine[0].action} `, badge(mine[0].result?.status)) : "-"],
      ["hostname", n.hostname || "-"], ["memory", n.memory ?? "-"], ["cpus", n.cpu_count ?? "-"],
      ["updated", when(n.updated)],
    ]),
    h("h3", {}, "Timeline"),
    h("p", { class: "muted" }, "Driver calls, state changes, drift, syncs and maintenance, newest first."),
    ...timeline(name, events, before),
    h("h3", {}, "Build data"),
    builddata.length ? h("div", { id: "node-builddata" }, builddata.map((b) => h("details", {},
      h("summary", {}, `${b.generator} · ${when(b.collected_date)}`), h("pre", {}, pretty(b.data_element)))))
      : h("p", { class: "muted", id: "node-builddata" }, "None collected."));
  return before ? 0 : 5000;
}

function pretty(s) {
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch (_) { return s; }
}

// ---- drivers and BMCs -------------------------------------------------------

/** What a driver asked for and was not granted, in words. */
function notGranted(n) {
  const parts = [...(n?.outbound || [])];
  if (n?.memory_mib) parts.push(`${n.memory_mib} MiB per call`);
  if (n?.call_secs) parts.push(`${n.call_secs} s calls`);
  return parts.length ? h("span", { class: "error" }, parts.join(", ")) : "-";
}

/** A driver's automatic rollback, in words. */
function rollback(a) {
  const r = a?.auto_rollback;
  if (!r) return "-";
  if (r.state === "armed") {
    return h("span", { class: "s-running", title: `until ${when(r.watch_until)}` },
      `armed: back to ${a.previous} if over ${Math.round(100 * r.max_error_ratio)} % of the first ${r.watch_calls} calls fail`);
  }
  if (r.state === "rolled_back") return h("span", { class: "error" }, "rolled back automatically");
  return "off";
}

async function driversPage(_, gen) {
  const drivers = await api.get(`${api.API}/drivers`);
  const rows = drivers.map((d) => ({
    attrs: { "data-driver": d.name, "data-rollback": d.active?.auto_rollback?.state || "" },
    cells: [
      h("strong", {}, d.name), d.loaded?.version || "-", d.active?.version || "(built in)", d.active?.previous || "-",
      d.loaded?.calls ?? 0, d.loaded?.errors ?? 0, rollback(d.active), d.active?.message || "-",
      (d.versions || []).map((v) => `${v.version}${v.active ? " (active)" : ""}${v.signer ? ` signed by ${v.signer}` : ""}`).join(", ") || "-",
      notGranted(d.not_granted),
    ],
  }));
  show(gen, h("h2", {}, "Drivers"),
    table(["driver", "loaded", "active", "previous", "calls", "errors", "automatic rollback", "last change",
      "installed versions", "requested, not granted"], rows, { id: "drivers" }));
  return 5000;
}

/** This instance's per-BMC call counts and latency, from its metrics. */
async function bmcMetrics() {
  const series = parseMetrics(await api.metricsText());
  const bmcs = new Map();
  const at = (b) => bmcs.get(b) || bmcs.set(b, { calls: 0, errors: 0, sum: 0, count: 0 }).get(b);
  for (const s of series) {
    const b = s.labels.bmc;
    if (!b) continue;
    if (s.name === "drydock_bmc_calls_total") at(b).calls = s.value;
    if (s.name === "drydock_bmc_errors_total") at(b).errors = s.value;
    if (s.name === "drydock_bmc_call_seconds_sum") at(b).sum = s.value;
    if (s.name === "drydock_bmc_call_seconds_count") at(b).count = s.value;
  }
  return bmcs;
}

async function bmcPage(_, gen) {
  const [metrics, health] = await Promise.all([bmcMetrics(), api.get(`${api.API}/fleet/bmcs`)]);
  const byBmc = new Map(health.map((b) => [b.bmc, b]));
  const names = [...new Set([...byBmc.keys(), ...metrics.keys()])].sort();
  const rows = names.map((b) => {
    const m = metrics.get(b) || { calls: 0, errors: 0, sum: 0, count: 0 };
    const c = byBmc.get(b) || { nodes: [], sync_failures: 0 };
    const e = c.last_error;
    return {
      attrs: { "data-bmc": b, "data-calls": m.calls, "data-errors": m.errors },
      cells: [b, (c.nodes || []).join(", ") || "-", m.calls, m.errors,
        m.calls ? `${((100 * m.errors) / m.calls).toFixed(1)} %` : "-", m.count ? `${((1000 * m.sum) / m.count).toFixed(1)} ms` : "-",
        c.observed_health || "-", c.sync_failures || 0,
        e ? h("span", { class: "error last-error" }, `${when(e.ts)} · ${e.node} · ${e.action || e.kind}: ${e.message || "failed"}`) : "-"],
    };
  });
  show(gen, h("h2", {}, "BMC health"),
    h("p", { class: "muted" }, "Calls, errors and latency are this instance's; health, failed syncs and the last error are the cluster's."),
    rows.length
      ? table(["BMC", "nodes", "calls", "errors", "error rate", "mean latency", "health", "failed syncs", "last error"], rows, { id: "bmcs" })
      : h("p", { class: "muted" }, "No BMCs yet."));
  return 5000;
}

// ---- start --------------------------------------------------------------------

document.getElementById("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  api.setToken(document.getElementById("token").value.trim());
  try {
    await api.get(`${api.API}/tasks?limit=1`);
    document.getElementById("token").value = "";
    if (!location.hash) location.hash = "#/tasks"; else route();
  } catch (e) {
    api.signOut();
    showSignin(e.status === 401 ? "That token was refused." : e.message);
  }
});
document.getElementById("signout").addEventListener("click", () => { api.signOut(); route(); });
window.addEventListener("hashchange", route);
route();
