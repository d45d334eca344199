// procnode admin page: rules (live validation, save), dry-run, jobs (retry, re-run, cancel).
// Talks only to this Orthanc's /procnode REST API; the browser sends Orthanc's credentials.
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
const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

let validationTimer = null;
let valid = false;

async function loadRules() {
  const rules = await api("GET", "../rules");
  $("rules-editor").value = rules.body || JSON.stringify(rules.rules, null, 2);
  $("rules-version").textContent = rules.version === 0
    ? "version 0 (built-in default)"
    : `version ${rules.version} by ${rules.author}, ${rules.created_at}`;
  await validate();
}

async function validate() {
  const text = $("rules-editor").value;
  let result;
  try {
    result = await api("POST", "../rules/validate", text);
  } catch (e) {
    result = { valid: false, errors: [{ pointer: "", reason: e.message }] };
  }
  valid = result.valid;
  $("save").disabled = !valid;
  $("rules-editor").classList.toggle("invalid", !valid);
  $("validation").innerHTML = valid
    ? '<span class="ok">✓ valid rule set</span>'
    : '<ul class="error-list">' + result.errors.map((e) =>
        `<li><code>${escapeHtml(e.pointer || "/")}</code>: ${escapeHtml(e.reason)}</li>`).join("") + "</ul>";
}

async function save() {
  $("save-result").textContent = "";
  try {
    const saved = await api("PUT", "../rules", $("rules-editor").value, { "X-Procnode-Comment": $("comment").value });
    $("save-result").innerHTML = `<span class="ok">Saved as version ${saved.version}; new studies are routed with it now.</span>`;
    $("comment").value = "";
    await loadRules();
  } catch (e) {
    $("save-result").innerHTML = `<span class="error-list">Not saved: ${escapeHtml(e.message)}</span>`;
  }
}

async function loadStudies() {
  const ids = await api("GET", "../../studies");
  const select = $("study");
  select.innerHTML = "";
  for (const id of ids) {
    const study = await api("GET", `../../studies/${id}`);
    const tags = study.MainDicomTags || {};
    const series = await api("GET", `../../studies/${id}/series`);
    const modalities = [...new Set(series.map((s) => s.MainDicomTags.Modality).filter(Boolean))].join("/");
    const option = document.createElement("option");
    option.value = id;
    option.textContent = `${modalities || "?"} · ${tags.StudyDescription || "(no description)"} · ${tags.StudyDate || ""} · ${id.slice(0, 8)}`;
    select.appendChild(option);
  }
}

async function dryRun() {
  const target = $("dry-run-result");
  target.textContent = "evaluating…";
  try {
    const body = { study: $("study").value };
    if (valid) body.rules = JSON.parse($("rules-editor").value);
    const result = await api("POST", "../rules/dry-run", body);
    target.innerHTML = `<p class="muted">Calling AET ${escapeHtml(result.calling_aet || "?")}, called AET ${escapeHtml(result.called_aet || "?")}; ` +
      `${result.jobs.length} job(s) would be created.</p>` +
      result.rules.map((r) => `<div class="rule-result ${r.fires ? "fires" : ""}">
        <h3>${r.fires ? "✓ fires" : "✗ does not fire"}: ${escapeHtml(r.rule)}</h3>
        <div class="muted">${escapeHtml(r.why)}</div>
        <ul class="conditions">${r.conditions.map((c) =>
          `<li class="${c.result}"><code>${escapeHtml(c.condition)}</code> — value ${escapeHtml(c.actual)}: ${c.result}</li>`).join("")}</ul>
      </div>`).join("");
  } catch (e) {
    target.innerHTML = `<span class="error-list">${escapeHtml(e.message)}</span>`;
  }
}

// A job's deliveries: destination and state; a failed attempt's reason in the tooltip.
function deliverySummary(job) {
  return (job.deliveries || []).map((d) => {
    const tries = d.state === "sent" ? "" : ` ${d.attempts}/${d.max_attempts}`;
    const title = d.last_error ? ` title="${escapeHtml(d.last_error)}"` : "";
    return `<span class="delivery ${d.state}"${title}>${escapeHtml(d.destination)} ${d.state}${tries}</span>`;
  }).join(" ");
}

// One line of a finished job's measurements (lung processor or volume statistics).
function resultSummary(job) {
  const m = job.result && job.result.measurements;
  if (!m) return "";
  const fixed = (x, digits) => (typeof x === "number" ? x.toFixed(digits) : "?");
  if (m.total && m.total.volume_ml !== undefined) {
    return `lungs ${fixed(m.total.volume_ml, 0)} mL (R ${fixed(m.right_lung.volume_ml, 0)}, L ${fixed(m.left_lung.volume_ml, 0)}), ` +
      `LAA%-950 ${fixed(m.total.laa950_percent, 1)} %, MLD ${fixed(m.total.mean_lung_density_hu, 0)} HU, ` +
      `Perc15 ${fixed(m.total.perc15_hu, 0)} HU`;
  }
  if (m.mean !== undefined) return `mean ${fixed(m.mean, 1)}${job.result.units ? " " + job.result.units : ""}, ${m.count} voxels`;
  return "";
}

async function loadJobs() {
  const state = $("job-filter").value;
  const jobs = await api("GET", "../jobs" + (state ? `?state=${state}` : ""));
  $("jobs").querySelector("tbody").innerHTML = jobs.map((j) => `<tr data-job="${j.id}">
    <td>${j.id}</td>
    <td class="state ${j.state}">${j.state}</td>
    <td>${Math.round(j.progress * 100)}% <span class="muted">${escapeHtml(j.progress_message || "")}</span>${j.waiting_for ? ` <span class="error-text">waiting for ${escapeHtml(j.waiting_for)}</span>` : ""}</td>
    <td>${escapeHtml(j.rule.id)}@${j.rule.version}</td>
    <td>${escapeHtml(j.pipeline)}</td>
    <td>${j.attempts}/${j.max_attempts}</td>
    <td>${j.error ? `<span class="error-text">${escapeHtml(j.error)}</span>` : escapeHtml(resultSummary(j))}</td>
    <td class="deliveries">${deliverySummary(j)}</td>
    <td>${["failed", "cancelled"].includes(j.state) ? `<button class="small" data-action="retry">Retry</button>` : ""}
        ${j.state === "done" ? `<button class="small" data-action="retry" title="run the job again (its results are replaced)">Re-run</button>` : ""}
        ${["queued", "running"].includes(j.state) ? `<button class="small" data-action="cancel">Cancel</button>` : ""}
        ${(j.deliveries || []).some((d) => ["sent", "dead"].includes(d.state)) ? `<button class="small" data-action="resend" title="send the results to the job's destinations again">Resend</button>` : ""}</td>
  </tr>`).join("") || '<tr><td colspan="9" class="muted">no jobs</td></tr>';
}

async function jobAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = button.closest("tr").dataset.job;
  try {
    await api("POST", `../jobs/${id}/${button.dataset.action}`, {});
  } catch (e) {
    alert(`Job ${id}: ${e.message}`);
  }
  await loadJobs();
}

async function loadStatus() {
  try {
    const s = await api("GET", "../status");
    const pools = await api("GET", "../workers").catch(() => []);
    const live = pools.filter((w) => w.live);
    const d = s.deliveries || {};
    // Results that could not be sent after every retry wait in the dead-letter state for a resend.
    const dead = d.dead ? ` · <span class="error-text">${d.dead} delivery(ies) failed for good: Resend from the job</span>` : "";
    $("node-status").innerHTML = escapeHtml(`v${s.version} · ${s.workers} worker(s) · ` +
      `${s.gpu.found ? "GPU " + s.gpu.name : "CPU only"} · queued ${s.queue.queued}, running ${s.queue.running}, failed ${s.queue.failed}` +
      ` · deliveries ${d.pending || 0} pending, ${d.sent || 0} sent` +
      ` · worker pools ${live.length} live (${live.filter((w) => w.kind === "standalone").length} standalone, ` +
      `${live.filter((w) => w.gpu).length} with GPU)`) + dead +
      (s.intake && s.intake.waiting_for_database ? ' · <span class="error-text">intake waiting for the job database</span>' : "") +
      (s.identity && s.identity.mode === "none" ? ` · <span class="error-text">callers not verified${s.identity.anonymous_administration ? " (anonymous administration: lab only)" : ""}</span>` : "");
  } catch (e) {
    $("node-status").textContent = "procnode unreachable: " + e.message;
  }
}

$("rules-editor").addEventListener("input", () => {
  clearTimeout(validationTimer);
  validationTimer = setTimeout(validate, 250);
});
$("save").addEventListener("click", save);
$("dry-run").addEventListener("click", dryRun);
$("job-filter").addEventListener("change", loadJobs);
$("jobs").addEventListener("click", jobAction);

loadStatus(); loadRules(); loadStudies(); loadJobs();
setInterval(() => { loadJobs(); loadStatus(); }, 2000);
