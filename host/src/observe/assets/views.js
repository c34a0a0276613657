// DOM helpers: every value reaches the page as text, never as markup.

/** Builds an element: h("td", {class: "x"}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A status badge (task status or result status). */
export function badge(s) {
  const text = s || "-";
  return h("span", { class: `badge s-${text}`, "data-status": text }, text);
}

/** A table with a header row; rows are arrays of cells, or {cells, onclick, attrs}. */
export function table(headers, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => {
      const row = Array.isArray(r) ? { cells: r } : r;
      return h("tr", { ...(row.attrs || {}), class: row.onclick ? "clickable" : null, onclick: row.onclick },
        row.cells.map((c) => h("td", {}, c)));
    })));
}

/** A progress bar of done out of total. */
export function bar(done, total) {
  const pct = total ? Math.round((100 * done) / total) : 0;
  const inner = h("span", {});
  inner.style.width = `${pct}%`;
  return h("span", { class: "bar", title: `${done}/${total}` }, inner);
}

/** Definition grid of [label, value] pairs. */
export function grid(pairs) {
  return h("div", { class: "grid" }, pairs.flatMap(([k, v]) => [h("span", { class: "muted" }, k), h("span", {}, v ?? "-")]));
}

/** A timestamp as local time. */
export function when(ts) { return ts ? new Date(ts).toLocaleString() : "-"; }

/** Prometheus text format → [{name, labels, value}] (what the BMC page needs). */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}
