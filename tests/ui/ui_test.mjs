// Drives procnode's admin page in Debian's headless Chromium at 1280x800, as an admin would,
// without typing JSON: build a rule set with the forms (chest CTs to the lung processor, brain MRs
// nowhere), see a misspelt attribute flagged at its field, fix it, save, dry-run it on the chest CT
// and on the brain MR, change it in the form and replay the draft over the three stored studies
// (chest CT, brain MR, a head CT whose description holds a <script>), then watch the job the saved
// rule makes when a new chest series arrives (the caller sends it once this script writes
// SCREENSHOT_DIR/saved), open its page by keyboard, see its delivery end as a dead letter and resend
// it; save a second version, compare it with the first, roll back. Then a user who is not an admin
// sees the same pages read-only. Markup in a rule description, a save note and a DICOM attribute
// must show as text: no script runs, no dialog opens.
// Usage: node ui_test.mjs BASE_URL SCREENSHOT_DIR CHEST_STUDY_ID MR_STUDY_ID HEAD_STUDY_ID
// with PROCNODE_UI_ADMIN and PROCNODE_UI_VIEWER as "user:password".
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, shots, chestStudy, mrStudy, headStudy] = process.argv.slice(2);
const credentials = (variable) => {
  const [username, password] = (process.env[variable] || "").split(":");
  return { username, password };
};
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const failures = [];
let current = "opening the page";  // what the script was doing, for a timeout's message
const step = (what) => { current = what; console.log(`---- ${what}`); };
const check = (ok, what) => { console.log((ok ? "ok   " : "FAIL ") + what); if (!ok) failures.push(what); };
// Keys sorted at every level: two rule sets compared by content, not by key order.
const canonical = (value) => JSON.stringify(value, (key, v) =>
  v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v);

// A page of the admin console for one user; counts what the Content-Security-Policy blocked and
// every dialog (an injected alert() would open one).
async function open(user) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, httpCredentials: credentials(user) });
  const page = await context.newPage();
  const seen = { blocked: [], dialogs: [] };
  page.on("console", (message) => {
    if (/Content.Security.Policy/i.test(message.text())) seen.blocked.push(message.text());
  });
  page.on("dialog", async (dialog) => { seen.dialogs.push(dialog.message()); await dialog.dismiss(); });
  await page.goto(`${base}/procnode/ui/`);
  await page.waitForSelector("#rules-form .rule-card");
  return { page, seen };
}

// The page fits 1280 pixels: nothing scrolls sideways.
const fitsWidth = async (page) => page.evaluate(() => document.documentElement.scrollWidth <= 1280);
const field = (pointer) => `[data-pointer="${pointer}"]`;

try {
  const { page, seen } = await open("PROCNODE_UI_ADMIN");
  check((await page.textContent("#rules-version")).includes("version 0"), "the built-in rule set is shown");
  check(await page.isHidden("#read-only"), "an admin's page is not read-only");
  await page.waitForSelector("#validation .ok");
  await page.waitForFunction(() => document.getElementById("node-status").textContent.includes("deliveries"));
  check(/deliveries 0 pending, 0 sent/.test(await page.textContent("#node-status")), "the status line counts deliveries");
  // The in-plugin worker pool is registered and listed live, with its machine's memory.
  await page.waitForSelector("#workers tr[data-worker]");
  const worker = await page.textContent("#workers tr[data-worker]");
  check(/plugin/.test(worker) && /live/.test(worker) && /\d+\.\d GiB/.test(worker),
        `the workers table lists the plugin's pool, live, with its memory (${worker.trim()})`);
  await page.waitForSelector('#processors tr[data-processor="lung-emphysema"]');
  const lung = await page.textContent('#processors tr[data-processor="lung-emphysema"]');
  check(lung.includes("built-in") && lung.includes("CT, 8+ slices") && lung.includes("variant"),
        "the processors table lists the lung processor with what it accepts and its parameters");
  await page.click('#processors tr[data-processor="lung-emphysema"] summary');
  const variantDoc = await page.textContent('#processors tr[data-processor="lung-emphysema"] tr[data-parameter="variant"]');
  check(variantDoc.includes("fast | accurate") && variantDoc.includes("\"fast\"") && variantDoc.includes("closes each lung"),
        "its parameters are documented: type, default, allowed values, what each does");
  check(await page.$('#dicom-keywords option[value="StudyDescription"]') !== null &&
        await page.$('#dicom-keywords option[value="CallingAET"]') !== null,
        "attribute names complete from the DICOM dictionary (and the AE titles)");
  check(await fitsWidth(page), "the page fits 1280 pixels");
  await page.screenshot({ path: `${shots}/1-loaded.png`, fullPage: true });

  step("building the rule set in the form");
  // The rule set built in the form: the built-in rule removed, two rules added.
  const description = "<img src=x onerror=alert(1)> Chest CT to the lung processor";
  await page.click(`#rules-form ${field("/rules/0")} button:text("Remove rule")`);
  await page.click('#rules-form button:text("+ Add rule")');
  await page.fill(field("/rules/0/id"), "chest-ct");
  await page.fill(field("/rules/0/description"), description);
  await page.fill(field("/rules/0/match/all/0/equals"), "CT");
  await page.click(`fieldset${field("/rules/0/match")} > .group-actions button:text("+ condition")`);
  await page.fill(field("/rules/0/match/all/1/attribute"), "StudyDescriptoin");
  await page.selectOption(field("/rules/0/match/all/1/operator"), "contains");
  await page.fill(field("/rules/0/match/all/1/contains"), "chest");
  await page.check(field("/rules/0/match/all/1/case_sensitive"));
  await page.selectOption(field("/rules/0/action/pipeline"), "lung-emphysema");
  await page.selectOption(field("/rules/0/action/parameters/variant"), "fast");
  await page.check(`${field("/rules/0/action/destinations")} input[data-destination="NOWHERE"]`);
  await page.waitForSelector(`.field-error${field("/rules/0/match/all/1/attribute")}`);
  const fieldError = await page.textContent(`.field-error${field("/rules/0/match/all/1/attribute")}`);
  check(fieldError.includes("StudyDescriptoin") &&
        await page.getAttribute(`input${field("/rules/0/match/all/1/attribute")}`, "aria-invalid") === "true",
        `the misspelt attribute is flagged at its field (${fieldError})`);
  check((await page.textContent("#validation")).includes("/rules/0/match/all/1/attribute"), "and listed with its JSON pointer");
  check(await page.isDisabled("#save"), "an invalid rule set cannot be saved");
  await page.screenshot({ path: `${shots}/2-validation-error.png`, fullPage: true });
  await page.fill(field("/rules/0/match/all/1/attribute"), "StudyDescription");
  await page.waitForSelector("#validation .ok");
  check(await page.$("#rules-form .field-error") === null, "fixed, the field's error goes");

  await page.click('#rules-form button:text("+ Add rule")');
  await page.fill(field("/rules/1/id"), "brain-mr");
  await page.fill(field("/rules/1/description"), "Brain MR: nowhere");
  await page.uncheck(field("/rules/1/enabled"));
  await page.fill(field("/rules/1/match/all/0/equals"), "MR");
  await page.selectOption(field("/rules/1/action/pipeline"), "volume-stats");
  await page.waitForSelector("#validation .ok");

  step("comparing the form with the JSON view");
  // The JSON view holds what the form built; an edit there shows in the form. Tabs by keyboard.
  await page.focus("#tab-form");
  await page.keyboard.press("ArrowRight");
  check(await page.isVisible("#rules-editor") && await page.getAttribute("#tab-json", "aria-selected") === "true",
        "the JSON tab opens with the arrow key");
  const chestRules = [
    { id: "chest-ct", description,
      match: { all: [{ attribute: "Modality", equals: "CT" },
                     { attribute: "StudyDescription", contains: "chest", case_sensitive: false }] },
      action: { pipeline: "lung-emphysema", parameters: { variant: "fast" }, destinations: ["NOWHERE"] } },
    { id: "brain-mr", description: "Brain MR: nowhere", enabled: false,
      match: { all: [{ attribute: "Modality", equals: "MR" }] }, action: { pipeline: "volume-stats" } },
  ];
  const built = JSON.parse(await page.inputValue("#rules-editor"));
  check(canonical(built.rules) === canonical(chestRules), `the JSON view holds the rules built in the form (${JSON.stringify(built.rules)})`);
  built.rules[0].priority = 10;
  chestRules[0].priority = 10;
  await page.fill("#rules-editor", JSON.stringify(built, null, 2));
  await page.focus("#tab-json");
  await page.keyboard.press("ArrowLeft");
  check(await page.inputValue(field("/rules/0/priority")) === "10", "an edit in the JSON view shows in the form");
  await page.waitForSelector("#validation .ok");
  await page.fill("#comment", "<img src=x onerror=alert(2)> chest CT only");
  await page.click("#save");
  await page.waitForSelector("#save-result .ok");
  check((await page.textContent("#rules-version")).includes("version 1"), "saving makes version 1");

  step("dry-running");
  await page.waitForFunction((id) => [...document.querySelectorAll("#study option")].some((o) => o.value === id), chestStudy);
  await page.selectOption("#study", chestStudy);
  await page.click("#dry-run");
  await page.waitForSelector(".rule-result");
  const dry = await page.textContent("#dry-run-result");
  check(dry.includes("✓ fires: chest-ct"), "the dry run shows the chest rule firing");
  check(dry.includes("✗ does not fire: brain-mr") && dry.includes("disabled"), "and the disabled brain rule not firing");
  await page.screenshot({ path: `${shots}/3-dry-run.png`, fullPage: true });

  await page.selectOption("#study", mrStudy);
  await page.click("#dry-run");
  await page.waitForFunction(() => document.getElementById("dry-run-result").textContent.includes("0 job(s) would be created"));
  const dryMr = await page.textContent("#dry-run-result");
  check(dryMr.includes("✗ does not fire: chest-ct") && dryMr.includes("✗ does not fire: brain-mr"),
        "the brain MR goes nowhere");
  await page.screenshot({ path: `${shots}/3b-dry-run-mr.png`, fullPage: true });

  step("replaying a draft");
  // A draft changed in the form (not saved): the brain rule enabled, the chest rule's variant
  // changed; replayed over the three stored studies it shows what would change, per study, and
  // nothing is queued.
  await page.selectOption(field("/rules/0/action/parameters/variant"), "accurate");
  await page.check(field("/rules/1/enabled"));
  await page.waitForFunction(() => JSON.parse(document.getElementById("rules-editor").value).rules[1].enabled === undefined);
  await page.waitForSelector("#validation .ok");
  const jobsBefore = await page.evaluate(async () => (await (await fetch("../jobs")).json()).length);
  await page.fill("#replay-last", "5");
  await page.click("#replay");
  await page.waitForSelector("#replay-table");
  const summary = await page.textContent("#replay-result .replay-summary");
  check(/^3 studies \(saved version 1\): 1 job\(s\) now, 2 with the draft; 1 created, 0 no longer created, 1 with other parameters/
    .test(summary), `the replay sums up what the draft changes (${summary})`);
  const chestRow = await page.textContent(`#replay-table tr[data-study="${chestStudy}"]`);
  check(chestRow.includes("chest-ct") && chestRow.includes("\"variant\":\"fast\"") && chestRow.includes("\"variant\":\"accurate\""),
    "the chest CT's row shows its lung job with other parameters");
  const mrRow = await page.textContent(`#replay-table tr[data-study="${mrStudy}"]`);
  check(mrRow.includes("brain-mr → volume-stats") && (await page.$(`#replay-table tr[data-study="${mrStudy}"] .created`)) !== null,
    "the brain MR's row shows the job the draft would create");
  const headRow = await page.textContent(`#replay-table tr[data-study="${headStudy}"]`);
  check(headRow.includes("no change") && headRow.includes("<script>window.pwned=1</script>"),
    "the head CT fires nothing, now or with the draft; its description (a <script>) shows as text");
  check(await page.evaluate(async () => (await (await fetch("../jobs")).json()).length) === jobsBefore,
    "replaying queued nothing");
  check((await page.textContent("#rules-version")).includes("version 1"), "and saved nothing");
  await page.screenshot({ path: `${shots}/3c-replay.png`, fullPage: true });
  writeFileSync(`${shots}/saved`, "rules saved and tried\n");

  step("watching the jobs");
  await page.waitForSelector("#jobs tbody tr[data-job]", { timeout: 30000 });
  const jobs = await page.textContent("#jobs");
  check(/default@0/.test(jobs), "the job list shows the jobs with their rule and version");
  const lungRow = "#jobs tbody tr:has(td:text('chest-ct@1')):has(td.state.done)";
  await page.waitForSelector(lungRow, { timeout: 120000 });
  const row = await page.textContent(lungRow);
  check(row.includes("lung-emphysema") && /lungs \d+ mL/.test(row) && row.includes("LAA%-950"),
        "the saved rule's job ran the lung processor and shows its measurements");
  // Its results go to NOWHERE, which never answers: one attempt, then a dead letter with the reason.
  await page.waitForSelector(`${lungRow} .delivery.dead`, { timeout: 60000 });
  check((await page.textContent(`${lungRow} .deliveries`)).includes("NOWHERE dead 1/1"), "the dead delivery is shown on its job");
  check((await page.getAttribute(`${lungRow} .delivery.dead`, "title") || "").length > 0, "with the reason in its tooltip");
  await page.waitForFunction(() => /delivery\(ies\) failed for good/.test(document.getElementById("node-status").textContent));
  check(await fitsWidth(page), "the jobs table fits 1280 pixels");
  await page.screenshot({ path: `${shots}/4-jobs.png`, fullPage: true });
  const lungJob = await page.getAttribute(lungRow, "data-job");

  step("reading the job's page");
  // The job's page, opened from the keyboard: how it ran, what it found, the report inline, links
  // to its results in Orthanc Explorer and in the site's viewer.
  await page.focus(`${lungRow} button[data-open]`);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#job-detail:not([hidden]) .job-measurements");
  check((await page.textContent("#job-detail-title")).startsWith(`Job ${lungJob} · done`), "the job's page opens (Enter on its id)");
  const measured = await page.textContent("#job-detail .job-measurements");
  check(/total\.volume_ml/.test(measured) && /total\.laa950_percent/.test(measured), "its page lists the measurements");
  const stages = await page.textContent("#job-detail .job-stages");
  check(["fetch", "volume", "process", "store"].every((s) => stages.includes(s)) && / ms/.test(stages),
        "and every stage with its time");
  check((await page.textContent("#job-detail .job-spec")).includes("\"variant\": \"fast\""), "and the job's parameters");
  check((await page.textContent("#job-detail .job-events")).includes("done"), "and its events");
  const ranOn = await page.$$eval("#job-detail .job-summary tr", (rows) =>
    rows.filter((r) => r.querySelector("th").textContent === "worker").map((r) => r.querySelector("td").textContent)[0]);
  check(Boolean(ranOn) && ranOn !== "-" && !ranOn.endsWith("/delivery"), `and the worker that ran it, though its lease has ended (${ranOn})`);
  const pdfSrc = await page.getAttribute("#job-detail iframe.job-pdf", "src");
  const pdfType = await page.evaluate(async (src) => (await fetch(src)).headers.get("content-type"), pdfSrc);
  check(/\/pdf$/.test(pdfSrc || "") && /application\/pdf/.test(pdfType || ""), `the report PDF is shown inline (${pdfType})`);
  const links = await page.$$eval("#job-detail .job-links a", (as) => as.map((a) => a.getAttribute("href")));
  check(links.some((l) => l.includes("explorer.html#study?uuid=")) && links.filter((l) => l.includes("#instance?uuid=")).length >= 3,
        "with links to the study and to each result in Orthanc Explorer");
  const followed = await page.evaluate(async (href) => {
    const id = decodeURIComponent(href.split("uuid=")[1]);
    return (await fetch(`../../instances/${id}`)).status;
  }, links.find((l) => l.includes("#instance?uuid=")));
  check(followed === 200, "and the result links name instances Orthanc holds");
  const studyUid = await page.evaluate(async (id) => (await (await fetch(`../../studies/${id}`)).json()).MainDicomTags.StudyInstanceUID, chestStudy);
  await page.waitForSelector("#job-detail .viewer-links a");
  const viewer = await page.$$eval("#job-detail .viewer-links a", (as) => as.map((a) => a.getAttribute("href")));
  check(viewer.length >= 4 && viewer.every((l) => l.startsWith("https://viewer.example/ohif/viewer?StudyInstanceUIDs=" + studyUid)) &&
        viewer.slice(1).every((l) => /SeriesInstanceUIDs=[0-9.]+$/.test(l)),
        `and links to the study and each result series in the configured viewer (${viewer[0]})`);
  await page.screenshot({ path: `${shots}/5-job-page.png`, fullPage: true });
  step("resending and re-running");
  await page.click(`${lungRow} button[data-action=resend]`);
  // Polled from the page, as below: waitForFunction does not await an async predicate's promise.
  let resent = null;
  for (let i = 0; i < 60 && !resent; ++i) {
    const job = await page.evaluate(async (id) => (await fetch(`../jobs/${id}`)).json(), lungJob);
    if (job.events.some((e) => e.kind === "resend-requested")) resent = job;
    else await page.waitForTimeout(500);
  }
  check(resent !== null && resent.events.some((e) => e.kind === "resend-requested" && e.message.includes("NOWHERE")),
        "Resend queues the delivery again (job event)");
  // A done job can be run again (issue 12): Re-run queues it, and it comes back done.
  await page.click(`${lungRow} button[data-action=retry]`);
  let rerun = null;  // polled from the page (an async predicate would not be awaited by waitForFunction)
  for (let i = 0; i < 240 && !rerun; ++i) {
    const job = await page.evaluate(async (id) => (await fetch(`../jobs/${id}`)).json(), lungJob);
    if (job.state === "done" && job.events.some((e) => e.kind === "rerun-requested")) rerun = job;
    else await page.waitForTimeout(500);
  }
  // The events are in order: a "done" after the request is the second run's end (the first run's
  // count is not fixed: a study made unstable by its own results is routed again, harmlessly).
  const kinds = rerun === null ? [] : rerun.events.map((e) => e.kind);
  check(rerun !== null && kinds.indexOf("done") >= 0 && kinds.indexOf("done") < kinds.indexOf("rerun-requested") &&
        kinds.slice(kinds.indexOf("rerun-requested")).includes("done"),
        `Re-run runs the done job again (${kinds.join(" ")})`);
  // The jobs table is redrawn every 2 s: a keyboard user's focus stays on their button. The job's
  // own button (its id), which every redraw has: Resend comes and goes with the re-run's delivery.
  await page.focus(`#jobs tr[data-job="${lungJob}"] button[data-open]`);
  await page.waitForTimeout(4500);
  check(await page.evaluate((id) => document.activeElement.matches(`#jobs tr[data-job="${id}"] button[data-open]`), lungJob),
        "the focus stays on a job's button while the table refreshes");

  step("saving version 2, comparing, rolling back");
  // History: a second version (the accurate variant, chosen in the form), compared with the
  // first line by line, then rolled back to it (a third version holding the first's rules).
  await page.selectOption(field("/rules/0/action/parameters/variant"), "accurate");
  await page.uncheck(field("/rules/1/enabled"));  // the replay's draft had it on
  await page.waitForSelector("#validation .ok");
  await page.fill("#comment", "accurate variant");
  await page.click("#save");
  await page.waitForFunction(() => document.getElementById("rules-version").textContent.includes("version 2"));
  await page.waitForSelector('#history tr[data-version="2"]');
  await page.selectOption("#diff-from", "1");
  await page.selectOption("#diff-to", "2");
  await page.click("#diff");
  await page.waitForSelector("#diff-result pre.diff");
  const removed = await page.$$eval("#diff-result .removed", (d) => d.map((x) => x.textContent));
  const added = await page.$$eval("#diff-result .added", (d) => d.map((x) => x.textContent));
  check(removed.length === 1 && removed[0].includes("\"variant\": \"fast\"") && added.length === 1 && added[0].includes("\"variant\": \"accurate\""),
        `the diff of versions 1 and 2 shows the one changed line (${removed} / ${added})`);
  const history = await page.textContent("#history");
  check(history.includes("<img src=x onerror=alert(2)> chest CT only") && history.includes("accurate variant"),
        "the history lists each version's note (markup shown as text)");
  await page.click('#history button[data-rollback="1"]');
  await page.click('#rollback-result button[data-confirm-rollback="1"]');
  await page.waitForSelector("#rollback-result .ok");
  check((await page.textContent("#rules-version")).includes("version 3"), "rolling back to version 1 saves version 3");
  const rolledBack = JSON.parse(await page.inputValue("#rules-editor"));
  check(canonical(rolledBack.rules) === canonical(chestRules), "holding version 1's rules");
  check(await page.inputValue(field("/rules/0/description")) === description, "the form shows them (the description as typed)");
  await page.screenshot({ path: `${shots}/6-history.png`, fullPage: true });

  step("looking for injected markup");
  // Nothing from rules, notes or DICOM became markup or ran.
  check(seen.dialogs.length === 0, `no dialog opened${seen.dialogs.length ? ": " + seen.dialogs[0] : ""}`);
  check(await page.evaluate(() => window.pwned === undefined && document.querySelectorAll("main img, main script").length === 0),
        "no injected element exists and no injected script ran");
  check((await page.$$eval("#study option", (o) => o.map((x) => x.textContent))).some((t) => t.includes("<script>window.pwned=1</script>")),
        "the head CT's description is listed as text");
  check(seen.blocked.length === 0, `nothing was blocked by the Content-Security-Policy${seen.blocked.length ? ": " + seen.blocked[0] : ""}`);
  // Positive control: the policy is enforced, so an injected inline script is refused.
  await page.evaluate(() => {
    const script = document.createElement("script");
    script.textContent = "window.injected = true;";
    document.body.appendChild(script);
  });
  await page.waitForTimeout(300);
  check(seen.blocked.length > 0 && !(await page.evaluate(() => window.injected === true)),
        "the Content-Security-Policy refuses an injected inline script");

  step("checking the read-only page");
  // A user who is not an admin: the same pages, read-only, saying why; every change refused.
  const viewerPage = (await open("PROCNODE_UI_VIEWER")).page;
  await viewerPage.waitForSelector("#read-only:not([hidden])");
  const why = await viewerPage.textContent("#read-only");
  check(why.includes("Read-only") && why.includes("user \"viewer\" may not change"), `a non-admin is told the page is read-only (${why})`);
  await viewerPage.waitForSelector(`#rules-form ${field("/rules/0/id")}`);
  check(await viewerPage.$$eval("#rules-form input, #rules-form select, #rules-form button", (e) => e.length > 10 && e.every((x) => x.disabled)),
        "the rule form is there, every control disabled");
  check(await viewerPage.isDisabled("#save") && await viewerPage.getAttribute("#rules-editor", "readonly") !== null, "nothing can be saved");
  await viewerPage.waitForSelector("#jobs tbody tr[data-job] button[data-action]");
  check(await viewerPage.$$eval("#jobs button[data-action], #history button[data-rollback]", (b) => b.length > 0 && b.every((x) => x.disabled)),
        "job actions and rollback are disabled");
  await viewerPage.focus(`${lungRow} button[data-open]`);
  await viewerPage.keyboard.press("Enter");
  await viewerPage.waitForSelector("#job-detail:not([hidden]) .job-measurements");
  check(await viewerPage.$$eval("#job-detail button[data-action]", (b) => b.length > 0 && b.every((x) => x.disabled)),
        "the job's page opens, its actions disabled");
  const refused = await viewerPage.evaluate(async () => (await fetch("../rules", { method: "PUT", body: "{\"rules\": []}" })).status);
  check(refused === 403, `and a change sent anyway is refused (HTTP ${refused})`);
  await viewerPage.screenshot({ path: `${shots}/7-read-only.png`, fullPage: true });
} catch (e) {
  failures.push(`${e} (while ${current})`);
  console.log(`FAIL ${e} (while ${current})`);
} finally {
  await browser.close();
}
console.log(`${failures.length === 0 ? "all" : failures.length} ${failures.length === 0 ? "checks passed" : "checks failed"}`);
process.exit(failures.length === 0 ? 0 : 1);
