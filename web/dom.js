// procnode admin page: what every script of the page shares (loaded first): the REST call and
// safe DOM building.
"use strict";

const api = async (method, path, body, headers = {}) => {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = { error: text }; }
  if (!response.ok) { const error = new Error(data.error || response.statusText); error.data = data; throw error; }
  return data;
};

const $ = (id) => document.getElementById(id);
// A DOM element: h("span", { className: "ok", title: "..." }, "text", otherNode, ...). Text goes in
// as text nodes (never parsed as HTML), so nothing from the server can inject markup; empty
// children (null, false, "") are left out.
const h = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const element = Object.assign(document.createElement(tag), props);
  for (const [key, value] of Object.entries(dataset)) element.dataset[key] = value;
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false && c !== ""));
  return element;
};

// Tables the page redraws while they are open (jobs, workers, a job's page) keep the keyboard
// focus: the focused control is found again by its data attributes and its row's.
function focusKey(container) {
  const element = document.activeElement;
  if (!element || element === container || !container.contains(element)) return null;
  const attributes = (e) => Object.entries(e.dataset)
    .map(([k, v]) => `[data-${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}="${CSS.escape(v)}"]`).join("");
  const row = element.closest("tr");
  return (row && container.contains(row) ? `tr${attributes(row)} ` : "") + element.tagName.toLowerCase() + attributes(element);
}

function redrawKeepingFocus(container, redraw) {
  const key = focusKey(container);
  redraw();
  if (key) {
    const again = container.querySelector(key);
    if (again) again.focus();
  }
}
