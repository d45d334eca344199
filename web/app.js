// procnode admin page: rules (as forms or JSON, live validation, save, history with diff and
// rollback), dry-run, replay of a draft over recent studies, jobs (retry, re-run, cancel, a page per
// job), processors and workers. Read-only, with the reason, for callers who may not change things.
// Talks only to this Orthanc's /procnode REST API; the browser sends Orthanc's credentials.
"use strict";

let validationTimer = null;
let valid = false;
let admin = null;        // whether this caller may change rules and jobs (GET /procnode/status); null: not known yet
let viewerUrl = null;     // ProcNode.ViewerUrl: a study or series in the site's viewer
let activeVersion = null;

const scheduleValidation = () => {
  clearTimeout(validationTimer);
  validationTimer = setTimeout(validate, 250);
};

async function loadRules() {
  const rules = await api("GET", "../rules");
  activeVersion = rules.version;
  $("rules-editor").value = rules.body || JSON.stringify(rules.rules, null, 2);
  // The form edits the text as its author wrote it (key order kept), not the server's reading of it.
  let model = rules.rules;
  try { model = JSON.parse($("rules-editor").value); } catch (e) { /* the stored body is JSON; kept as a fallback */ }
  RulesForm.setModel(model);
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
  $("save").disabled = !valid || !admin;
  $("rules-editor").classList.toggle("invalid", !valid);
  RulesForm.showErrors(valid ? [] : result.errors);
  $("validation").replaceChildren(valid
    ? h("span", { className: "ok" }, "✓ valid rule set")
    : h("ul", { className: "error-list" },
        result.errors.map((e) => h("li", {}, h("code", {}, e.pointer || "/"), `: ${e.reason}`))));
}

// The form and the JSON view edit one rule set: each follows the other as it changes.
function formChanged(model) {
  $("rules-editor").value = JSON.stringify(model, null, 2);
  scheduleValidation();
}

function jsonChanged() {
  try {
    RulesForm.setModel(JSON.parse($("rules-editor").value));
  } catch (e) { /* not JSON yet: the form keeps the last rule set that was; validation says why */ }
  scheduleValidation();
}

// Tabs (WAI-ARIA): click, or arrow keys between them.
function showTab(which) {
  if (which === "form") {
    try {
      RulesForm.setModel(JSON.parse($("rules-editor").value));
    } catch (e) {
      $("validation").replaceChildren(h("span", { className: "error-list" }, `The JSON view is not JSON (${e.message}): fix it there first.`));
      return;
    }
  }
  for (const [tab, panel, name] of [["tab-form", "rules-form", "form"], ["tab-json", "rules-json", "json"]]) {
    $(tab).setAttribute("aria-selected", String(name === which));
    $(tab).tabIndex = name === which ? 0 : -1;
    $(panel).hidden = name !== which;
  }
  $(which === "form" ? "tab-form" : "tab-json").focus();
}

async function save() {
  $("save-result").textContent = "";
  try {
    const saved = await api("PUT", "../rules", $("rules-editor").value, { "X-Procnode-Comment": $("comment").value });
    $("comment").value = "";
    await loadRules();  // the page shows the saved version before it says so
    await loadHistory();
    $("save-result").replaceChildren(
      h("span", { className: "ok" }, `Saved as version ${saved.version}; new studies are routed with it now.`));
  } catch (e) {
    $("save-result").replaceChildren(h("span", { className: "error-list" }, `Not saved: ${e.message}`));
  }
}

// The rule set's versions, newest first: who saved each, when and why; any two compared line by
// line; rollback (a new version with an old one's rules) for admins, confirmed in place.
let historyList = [];

async function loadHistory() {
  historyList = await api("GET", "../rules/history").catch(() => []);
  const options = (selected) => historyList.map((v) => h("option", { value: String(v.version), selected: v.version === selected },
    `version ${v.version}`));
  $("diff-from").replaceChildren(...options(historyList.length > 1 ? historyList[1].version : null));
  $("diff-to").replaceChildren(...options(historyList.length ? historyList[0].version : null));
  const rows = historyList.map((v) => h("tr", { dataset: { version: v.version } },
    h("td", {}, String(v.version), v.version === activeVersion && h("span", { className: "ok" }, " (active)")),
    h("td", {}, v.author), h("td", {}, v.created_at), h("td", {}, v.comment || h("span", { className: "muted" }, "(no note)")),
    h("td", {}, v.version !== activeVersion && h("button", { className: "small", dataset: { rollback: v.version }, disabled: !admin,
      title: admin ? `Make version ${v.version}'s rules the active rule set (saved as a new version)` : "read-only" },
      `Roll back to ${v.version}`))));
  $("history").querySelector("tbody").replaceChildren(
    ...(rows.length ? rows : [h("tr", {}, h("td", { colSpan: 5, className: "muted" }, "nothing saved yet: the built-in default is active"))]));
}

// Lines of a and b compared (longest common subsequence): [" "|"-"|"+", line].
function lineDiff(a, b) {
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; --i) for (let j = m - 1; j >= 0; --j) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); ++i; ++j; }
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) out.push(["-", a[i++]]);  // removals before additions
    else out.push(["+", b[j++]]);
  }
  return out;
}

async function showDiff() {
  const target = $("diff-result");
  const [from, to] = [$("diff-from").value, $("diff-to").value];
  if (!from || !to) { target.replaceChildren(h("span", { className: "muted" }, "Save a version first.")); return; }
  try {
    const [a, b] = await Promise.all([api("GET", `../rules/history/${from}`), api("GET", `../rules/history/${to}`)]);
    const lines = lineDiff(JSON.stringify(a.rules, null, 2).split("\n"), JSON.stringify(b.rules, null, 2).split("\n"));
    const changes = lines.filter(([k]) => k !== " ").length;
    // Unchanged runs are cut to two lines of context around each change.
    const shown = lines.filter((_, k) => lines.slice(Math.max(0, k - 2), k + 3).some(([c]) => c !== " "));
    target.replaceChildren(
      h("p", { className: "muted" }, changes ? `version ${from} → ${to}: ${lines.filter(([k]) => k === "-").length} line(s) removed, ` +
        `${lines.filter(([k]) => k === "+").length} added` : `versions ${from} and ${to} hold the same rules`),
      changes > 0 && h("pre", { className: "diff" }, shown.map(([kind, line]) =>
        h("div", { className: kind === "+" ? "added" : kind === "-" ? "removed" : "same" }, `${kind} ${line}`))));
  } catch (e) {
    target.replaceChildren(h("span", { className: "error-list" }, e.message));
  }
}

async function historyAction(event) {
  const ask = event.target.closest("button[data-rollback]");
  const confirm = event.target.closest("button[data-confirm-rollback]");
  const result = $("rollback-result");
  if (ask) {
    const version = ask.dataset.rollback;
    const yes = h("button", { className: "small", dataset: { confirmRollback: version } }, `Yes, roll back to version ${version}`);
    const no = h("button", { className: "small", dataset: { confirmRollback: "" } }, "Keep the active rules");
    result.replaceChildren(h("span", {}, `Make version ${version}'s rules active again (saved as a new version)? `), yes, " ", no);
    yes.focus();
  } else if (confirm) {
    if (!confirm.dataset.confirmRollback) { result.replaceChildren(); return; }
    try {
      const saved = await api("POST", "../rules/rollback", { version: Number(confirm.dataset.confirmRollback) });
      await loadRules();
      await loadHistory();
      result.replaceChildren(h("span", { className: "ok" }, `Rolled back: version ${saved.version} holds version ${confirm.dataset.confirmRollback}'s rules.`));
    } catch (e) {
      result.replaceChildren(h("span", { className: "error-list" }, `Not rolled back: ${e.message}`));
    }
  }
}

async function loadStudies() {
  const ids = await api("GET", "../../studies");
  const select = $("study");
  select.replaceChildren();
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
    target.replaceChildren(
      h("p", { className: "muted" }, `Calling AET ${result.calling_aet || "?"}, called AET ${result.called_aet || "?"}; ` +
        `${result.jobs.length} job(s) would be created.`),
      ...result.rules.map((r) => h("div", { className: r.fires ? "rule-result fires" : "rule-result" },
        h("h3", {}, `${r.fires ? "✓ fires" : "✗ does not fire"}: ${r.rule}`),
        h("div", { className: "muted" }, r.why),
        h("ul", { className: "conditions" }, r.conditions.map((c) =>
          h("li", { className: c.result }, h("code", {}, c.condition), ` — value ${c.actual}: ${c.result}`))))));
  } catch (e) {
    target.replaceChildren(h("span", { className: "error-list" }, e.message));
  }
}

// The draft in the editor replayed over recent studies: a summary line and one row per study with
// the rules firing now and with the draft, and the jobs created, no longer created or changed.
async function replay() {
  const target = $("replay-result");
  if (!valid) {
    target.replaceChildren(h("span", { className: "error-list" }, "The draft is not valid: fix it first (see the errors above)."));
    return;
  }
  target.textContent = "replaying…";
  const body = { rules: JSON.parse($("rules-editor").value) };
  const day = (id) => $(id).value.replaceAll("-", "");
  if (day("replay-from") || day("replay-to")) {
    if (day("replay-from")) body.from = day("replay-from");
    if (day("replay-to")) body.to = day("replay-to");
  } else {
    body.last = Number($("replay-last").value) || 20;
  }
  try {
    const r = await api("POST", "../rules/replay", body);
    const t = r.totals;
    const jobList = (list, cls) => list.map((j) => h("div", { className: cls },
      `${j.rule} → ${j.pipeline}${j.series ? " (series " + j.series.slice(0, 8) + ")" : ""}`));
    const rows = r.studies.map((s) => h("tr", { dataset: { study: s.study } },
      h("td", {}, `${(s.modalities || []).join("/") || "?"} · ${s.description || "(no description)"} · ${s.study_date || ""}`,
        h("div", { className: "muted" }, `received ${s.received.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)$/, "$1-$2-$3 $4:$5:$6")}` +
          ` · ${s.study.slice(0, 8)}`)),
      h("td", { className: "fired-now" }, s.error ? h("span", { className: "error-text" }, s.error) : (s.now.fired.join(", ") || "-")),
      h("td", { className: "fired-draft" }, s.error ? "" : (s.draft.fired.join(", ") || "-")),
      h("td", { className: "changes" },
        jobList(s.created || [], "created"), jobList(s.no_longer_created || [], "removed"),
        (s.changed || []).map((c) => h("div", { className: "changed" },
          `${c.rule}: parameters ${JSON.stringify(c.now.parameters || {})} → ${JSON.stringify(c.draft.parameters || {})}`)),
        !s.error && !(s.created || []).length && !(s.no_longer_created || []).length && !(s.changed || []).length &&
          h("span", { className: "muted" }, "no change"))));
    target.replaceChildren(
      h("p", { className: "replay-summary" },
        `${t.studies} stud${t.studies === 1 ? "y" : "ies"} (saved version ${r.rule_set_version}): ` +
        `${t.jobs_now} job(s) now, ${t.jobs_draft} with the draft; ${t.created} created, ${t.no_longer_created} no longer ` +
        `created, ${t.changed} with other parameters${t.errors ? `; ${t.errors} could not be evaluated` : ""}.`),
      h("table", { id: "replay-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Study"), h("th", {}, "Fires now"), h("th", {}, "Fires with the draft"),
          h("th", {}, "Jobs"))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colSpan: 4, className: "muted" }, "no studies")))));
  } catch (e) {
    const errors = (e.data && e.data.errors) || [];
    target.replaceChildren(h("span", { className: "error-list" }, `Not replayed: ${e.message}`,
      ...errors.map((x) => [" ", h("code", {}, x.pointer || "/"), `: ${x.reason}`])));
  }
}

// A job's deliveries: destination and state; a failed attempt's reason in the tooltip.
function deliverySummary(job) {
  return (job.deliveries || []).flatMap((d, i) => {
    const tries = d.state === "sent" ? "" : ` ${d.attempts}/${d.max_attempts}`;
    const span = h("span", { className: `delivery ${d.state}` }, `${d.destination} ${d.state}${tries}`);
    if (d.last_error) span.title = d.last_error;
    return i === 0 ? [span] : [" ", span];
  });
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

// An external tool's run (exit code, time, memory, the end of its output) and the files the job
// kept (derived images, logs), each a download link.
function toolSummary(job) {
  const t = job.result && job.result.tool;
  const files = (job.result && job.result.files) || [];
  if (!t && !files.length) return [];
  const line = t ? h("span", { className: "muted", title: (t.stderr_tail || t.stdout_tail || "").slice(-2000) },
    `${t.tool} ${t.version}: exit ${t.exit_code}, ${t.runtime_seconds.toFixed(2)} s, ${t.peak_memory_mb} MiB`) : null;
  const links = files.filter((f) => f.kept).map((f) =>
    h("a", { href: `../jobs/${job.id}/files/${encodeURIComponent(f.name)}`, title: f.description || "" }, f.name));
  return [h("br", {}), line, ...links.flatMap((a) => [" ", a])];
}

// A job's page: what it is, how it ran (stages and their times, worker, device), what it found
// (measurements, warnings, the report PDF inline), where its results are (links to Orthanc
// Explorer), its deliveries and events, and the admin's actions. Refreshed while it is open.
let openJob = null;
let shownJob = null;  // what the open job's page shows, as JSON

function flatten(value, prefix = "") {
  if (value === null || typeof value !== "object") return [[prefix, value]];
  return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
}

function keyValueTable(rows, className) {
  return h("table", { className }, h("tbody", {}, rows.map(([k, v]) =>
    h("tr", {}, h("th", {}, k), h("td", {}, typeof v === "number" ? String(Math.round(v * 1000) / 1000) : String(v))))));
}

// Links into the site's viewer (ProcNode.ViewerUrl, e.g. OHIF) for the job's study and each
// result series; the UIDs come from Orthanc. None when no viewer is configured.
async function viewerLinks(job) {
  if (!viewerUrl) return [];
  const link = (label, study, series) => h("a", { className: "viewer", target: "_blank", rel: "noopener",
    href: viewerUrl.replaceAll("{StudyInstanceUID}", encodeURIComponent(study)).replaceAll("{SeriesInstanceUID}", encodeURIComponent(series || "")) }, label);
  try {
    const study = (await api("GET", `../../studies/${encodeURIComponent(job.study)}`)).MainDicomTags.StudyInstanceUID;
    const links = [link("study", study, "")];
    if (viewerUrl.includes("{SeriesInstanceUID}")) {
      const results = (job.result && job.result.results) || [];
      for (const o of results) {
        const instance = await api("GET", `../../instances/${encodeURIComponent(o.stored)}/series`).catch(() => null);
        if (instance) links.push(link(o.kind, study, instance.MainDicomTags.SeriesInstanceUID));
      }
    }
    return links;
  } catch (e) {
    return [];
  }
}

// Where the job runs: "local", or its Slurm batch job with the state and reason squeue gave.
function slurmSummary(job) {
  const s = job.slurm;
  if (job.executor !== "slurm" || !s) return job.executor || "local";
  return `Slurm job ${s.job_id || "(not submitted yet)"}${s.state ? " · " + s.state : ""}` +
    `${s.reason && s.reason !== "None" ? " (" + s.reason + ")" : ""}${s.tracked ? "" : " · ended"}`;
}

async function showJob(id) {
  openJob = id;
  let job;
  try {
    job = await api("GET", `../jobs/${id}`);
  } catch (e) {
    $("job-detail-body").replaceChildren(h("span", { className: "error-list" }, `Job ${id}: ${e.message}`));
    return;
  }
  if (openJob !== id) return;
  // Polled while open: drawn again only when the job changed (the PDF frame is not reloaded, the
  // focus stays where it is).
  const drawn = JSON.stringify([job, admin, viewerUrl]);
  if (drawn === shownJob && $("job-detail-body").dataset.job === String(id)) return;
  shownJob = drawn;
  const r = job.result || {};
  const button = (action, label) => h("button", { className: "small", dataset: { action }, disabled: !admin,
    title: admin ? "" : "read-only" }, label);
  // The worker: the lease holder while it runs, else the one that claimed it last.
  const worker = job.lease_owner || [...(job.events || [])].reverse().filter((e) => e.kind === "claimed" || e.kind === "reclaimed").map((e) => e.owner).find(Boolean) || "-";
  const viewer = await viewerLinks(job);
  const explorer = (level, uuid) => h("a", { href: `../../app/explorer.html#${level}?uuid=${encodeURIComponent(uuid)}`,
    target: "_blank", rel: "noopener" }, `${level} ${uuid.slice(0, 8)}`);
  const stored = r.results || [];
  const pdf = stored.find((o) => /pdf/i.test(o.kind));
  $("job-detail").hidden = false;
  $("job-detail-title").textContent = `Job ${job.id} · ${job.state}`;
  $("job-detail-body").dataset.job = String(job.id);
  redrawKeepingFocus($("job-detail-body"), () => $("job-detail-body").replaceChildren(h("div", {},
    h("div", { className: "actions" },
      ["failed", "cancelled", "done"].includes(job.state) && button("retry", job.state === "done" ? "Re-run" : "Retry"),
      ["queued", "running"].includes(job.state) && button("cancel", "Cancel"),
      (job.deliveries || []).some((d) => ["sent", "dead"].includes(d.state)) && button("resend", "Resend")),
    keyValueTable([
      ["rule", `${job.rule.id}@${job.rule.version}`], ["processor", job.pipeline], ["device", job.device || "-"],
      ["worker", worker], ["executor", slurmSummary(job)], ["attempts", `${job.attempts}/${job.max_attempts}`],
      ["created", job.created_at || "-"], ["started", job.started_at || "-"], ["finished", job.finished_at || "-"],
      ["progress", `${Math.round(job.progress * 100)}% ${job.progress_message || ""}`]], "job-summary"),
    job.error && h("p", { className: "error-text job-error" }, job.error),
    (r.warnings || []).length > 0 && h("ul", { className: "job-warnings" }, r.warnings.map((w) => h("li", {}, w))),
    h("h3", {}, "Input and results"),
    h("div", { className: "job-links" }, explorer("study", job.study),
      job.series && [" · input ", explorer("series", job.series)],
      stored.map((o) => [" · ", o.kind, " ", explorer("instance", o.stored)])),
    viewer.length > 0 && h("div", { className: "viewer-links" }, "In the viewer: ", viewer.flatMap((a, i) => (i ? [" · ", a] : [a]))),
    h("h3", {}, "Stages"),
    keyValueTable(Object.entries(r.timings_ms || {}).map(([stage, ms]) => [stage, `${Math.round(ms)} ms`]), "job-stages"),
    h("h3", {}, "Parameters"),
    h("pre", { className: "job-spec" }, JSON.stringify(job.spec, null, 2)),
    job.slurm && job.slurm.script && [h("h3", {}, `Batch script (Slurm job ${job.slurm.job_id})`),
      h("pre", { className: "job-spec job-slurm-script" }, job.slurm.script)],
    h("h3", {}, "Measurements"),
    keyValueTable(flatten(r.measurements || {}), "job-measurements"),
    pdf && [h("h3", {}, "Report"),
      h("iframe", { className: "job-pdf", src: `../../instances/${encodeURIComponent(pdf.stored)}/pdf`, title: "The job's PDF report" })],
    h("h3", {}, "Deliveries"),
    (job.deliveries || []).length ? h("div", { className: "deliveries" }, deliverySummary(job)) : h("span", { className: "muted" }, "none"),
    h("h3", {}, "Events"),
    h("table", { className: "job-events" }, h("tbody", {}, (job.events || []).map((e) =>
      h("tr", {}, h("td", {}, e.at), h("td", {}, e.kind), h("td", {}, e.owner || ""), h("td", {}, e.message))))))));
}

async function jobDetailAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = $("job-detail-body").dataset.job;
  try {
    await api("POST", `../jobs/${id}/${button.dataset.action}`, {});
  } catch (e) {
    alert(`Job ${id}: ${e.message}`);
  }
  await showJob(Number(id));
}

async function loadJobs() {
  const state = $("job-filter").value;
  const jobs = await api("GET", "../jobs" + (state ? `?state=${state}` : ""));
  const button = (action, label, title) => h("button", { className: "small", dataset: { action }, disabled: !admin,
    title: admin ? title || "" : "read-only" }, label);
  runningJobs = jobs.filter((j) => j.state === "running");
  const rows = jobs.map((j) => h("tr", { dataset: { job: j.id } },
    h("td", {}, h("button", { className: "link", dataset: { open: j.id }, title: "Open the job's page" }, String(j.id))),
    h("td", { className: `state ${j.state}` }, j.state),
    h("td", {}, `${Math.round(j.progress * 100)}% `, h("span", { className: "muted" }, j.progress_message || ""),
      j.waiting_for && [" ", h("span", { className: "error-text" }, `waiting for ${j.waiting_for}`)]),
    h("td", {}, `${j.rule.id}@${j.rule.version}`),
    h("td", {}, j.pipeline),
    h("td", {}, `${j.attempts}/${j.max_attempts}`),
    h("td", {}, j.error ? h("span", { className: "error-text" }, j.error) : [resultSummary(j), ...toolSummary(j)]),
    h("td", { className: "deliveries" }, deliverySummary(j)),
    h("td", {},
      ["failed", "cancelled"].includes(j.state) && button("retry", "Retry"),
      j.state === "done" && button("retry", "Re-run", "run the job again (its results are replaced)"),
      ["queued", "running"].includes(j.state) && button("cancel", "Cancel"),
      (j.deliveries || []).some((d) => ["sent", "dead"].includes(d.state)) &&
        button("resend", "Resend", "send the results to the job's destinations again"))));
  redrawKeepingFocus($("jobs"), () => $("jobs").querySelector("tbody").replaceChildren(
    ...(rows.length ? rows : [h("tr", {}, h("td", { colSpan: 9, className: "muted" }, "no jobs"))])));
}

async function jobAction(event) {
  const open = event.target.closest("button[data-open]");
  if (open) {
    await showJob(Number(open.dataset.open));
    $("job-detail").scrollIntoView();
    return;
  }
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

let runningJobs = [];

// "12.0 GiB"; "-" when unknown (0).
function gib(bytes) {
  return bytes ? `${(bytes / 1073741824).toFixed(1)} GiB` : "-";
}

// Every registered worker pool of this Orthanc (in plugins and standalone), live or gone.
function renderWorkers(pools) {
  const rows = pools.map((w) => h("tr", { dataset: { worker: w.owner } },
    h("td", {}, w.host),
    h("td", {}, w.kind),
    h("td", {}, String(w.threads)),
    h("td", {}, w.gpu ? `${w.gpu} (${gib(w.gpu_memory_bytes)})` : "none"),
    h("td", {}, gib(w.host_memory_bytes)),
    h("td", {}, w.last_seen),
    h("td", { className: w.live ? "state done" : "state failed" }, w.live ? "live" : "gone"),
    h("td", { className: "worker-jobs" }, runningJobs.filter((j) => j.lease_owner === w.owner).flatMap((j, i) => [i ? " " : "",
      h("button", { className: "link", dataset: { open: j.id }, title: "Open the job's page" }, `${j.id} ${j.pipeline}`)])) ));
  redrawKeepingFocus($("workers"), () => $("workers").querySelector("tbody").replaceChildren(
    ...(rows.length ? rows : [h("tr", {}, h("td", { colSpan: 8, className: "muted" }, "no worker registered"))])));
}

// The node's processors, built-in and external tools alike, with what each accepts and needs and,
// opened, every parameter: what it does, its type, default and range.
let processorList = [];

function parameterDocs(schema) {
  const properties = Object.entries((schema && schema.properties) || {});
  if (!properties.length) return "-";
  return h("details", {},
    h("summary", {}, properties.map(([name]) => name).join(", ")),
    h("table", { className: "parameter-docs" },
      h("thead", {}, h("tr", {}, h("th", {}, "Parameter"), h("th", {}, "Type"), h("th", {}, "Default"), h("th", {}, "Allowed"), h("th", {}, "What it does"))),
      h("tbody", {}, properties.map(([name, p]) => h("tr", { dataset: { parameter: name } },
        h("td", {}, h("code", {}, name)), h("td", {}, p.type || "any"),
        h("td", {}, p.default === undefined ? "-" : JSON.stringify(p.default)),
        h("td", {}, Array.isArray(p.enum) ? p.enum.join(" | ")
          : p.minimum !== undefined || p.maximum !== undefined ? `${p.minimum ?? "…"} to ${p.maximum ?? "…"}` : "-"),
        h("td", {}, p.description || ""))))));
}

async function loadProcessors() {
  processorList = await api("GET", "../processors").catch(() => []);
  RulesForm.setContext({ processors: processorList });
  const rows = processorList.map((p) => {
    const r = p.details && p.details.requirements;
    const needs = r ? `${r.cpus} CPU, ${r.memory_mb} MiB, ${r.time_limit_seconds} s${r.gpu ? ", GPU" : ""}`
      : p.gpu ? "CPU or GPU" : "CPU";
    return h("tr", { dataset: { processor: p.name } },
      h("td", {}, h("code", {}, p.name)),
      h("td", {}, p.kind === "external" ? "external tool" : "built-in"),
      h("td", {}, p.version),
      h("td", {}, `${(p.modalities || []).join(", ") || "any"}, ${p.min_slices}+ slices`),
      h("td", {}, needs),
      h("td", {}, parameterDocs(p.parameters)),
      h("td", { className: "muted" }, p.description));
  });
  $("processors").querySelector("tbody").replaceChildren(
    ...(rows.length ? rows : [h("tr", {}, h("td", { colSpan: 7, className: "muted" }, "none"))]));
}

// The data dictionary's keywords, for completing attribute names in the rule form.
async function loadKeywords() {
  const keywords = await api("GET", "../dicom/keywords").catch(() => []);
  $("dicom-keywords").replaceChildren(
    h("option", { value: "CallingAET", label: "the sender's AE title" }), h("option", { value: "CalledAET", label: "procnode's AE title as called" }),
    ...keywords.map((k) => h("option", { value: k.keyword, label: `${k.tag} ${k.vr}` })));
}

// Admin or not: a read-only page says so and why, and offers no control that would be refused.
function applyCaller(caller) {
  const was = admin;
  admin = Boolean(caller && caller.admin);
  $("read-only").hidden = admin;
  if (!admin) {
    $("read-only").textContent = `Read-only: ${(caller && caller.refusal) || "this user may not change procnode rules or jobs"}.`;
  }
  if (was !== admin) {
    RulesForm.setContext({ readOnly: !admin });
    $("rules-editor").readOnly = !admin;
    $("comment").disabled = !admin;
    $("save").disabled = !valid || !admin;
    loadHistory();
    loadJobs();
  }
}

async function loadStatus() {
  try {
    const s = await api("GET", "../status");
    applyCaller(s.caller);
    viewerUrl = s.viewer_url || null;
    RulesForm.setContext({ destinations: s.destinations || [] });
    const pools = await api("GET", "../workers").catch(() => []);
    const live = pools.filter((w) => w.live);
    renderWorkers(pools);
    const d = s.deliveries || {};
    const warning = (text) => [" · ", h("span", { className: "error-text" }, text)];
    $("node-status").replaceChildren(`v${s.version} · ${s.workers} worker(s) · ` +
      `${s.gpu.found ? "GPU " + s.gpu.name : "CPU only"} · queued ${s.queue.queued}, running ${s.queue.running}, failed ${s.queue.failed}` +
      ` · deliveries ${d.pending || 0} pending, ${d.sent || 0} sent` +
      ` · worker pools ${live.length} live (${live.filter((w) => w.kind === "standalone").length} standalone, ` +
      `${live.filter((w) => w.gpu).length} with GPU)`,
      // Results that could not be sent after every retry wait in the dead-letter state for a resend.
      ...(d.dead ? warning(`${d.dead} delivery(ies) failed for good: Resend from the job`) : []),
      ...(s.intake && s.intake.waiting_for_database ? warning("intake waiting for the job database") : []),
      ...(s.executor && s.executor.problem ? warning(`Slurm: ${s.executor.problem}`) : []),
      ...(s.identity && s.identity.mode === "none"
        ? warning(`callers not verified${s.identity.anonymous_administration ? " (anonymous administration: lab only)" : ""}`) : []));
  } catch (e) {
    $("node-status").textContent = "procnode unreachable: " + e.message;
  }
}

RulesForm.attach($("rules-form"), formChanged);
$("rules-editor").addEventListener("input", jsonChanged);
$("tab-form").addEventListener("click", () => showTab("form"));
$("tab-json").addEventListener("click", () => showTab("json"));
for (const tab of ["tab-form", "tab-json"]) {
  $(tab).addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") showTab(tab === "tab-form" ? "json" : "form");
  });
}
$("save").addEventListener("click", save);
$("dry-run").addEventListener("click", dryRun);
$("replay").addEventListener("click", replay);
$("diff").addEventListener("click", showDiff);
$("history").addEventListener("click", historyAction);
$("rollback-result").addEventListener("click", historyAction);
$("job-filter").addEventListener("change", loadJobs);
$("jobs").addEventListener("click", jobAction);
$("workers").addEventListener("click", jobAction);
$("job-detail-body").addEventListener("click", jobDetailAction);
$("job-detail-close").addEventListener("click", () => { openJob = null; $("job-detail").hidden = true; });

// The caller first (read-only or not), then everything else.
loadStatus().then(() => Promise.all([loadProcessors(), loadKeywords()])).then(loadRules).then(loadHistory);
loadStudies(); loadJobs();
setInterval(() => { loadJobs(); loadStatus(); if (openJob !== null) showJob(openJob); }, 2000);
