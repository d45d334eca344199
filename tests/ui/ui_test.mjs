// Drives procnode's admin page in Debian's headless Chromium, as an admin would:
// load, write a rule sending chest CTs to the lung processor and brain MRs nowhere (see a mistake
// flagged where it is), fix it, save, dry-run it on the chest CT and on the brain MR, replay a
// draft over both studies and see what it would change, then watch
// the job the saved rule makes when a new chest series arrives (the caller sends it once this
// script writes SCREENSHOT_DIR/saved), its delivery to a destination that never answers end as a
// dead letter, and resend it.
// Usage: node ui_test.mjs BASE_URL SCREENSHOT_DIR CHEST_STUDY_ID MR_STUDY_ID
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, shots, chestStudy, mrStudy] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const failures = [];
const check = (ok, what) => { console.log((ok ? "ok   " : "FAIL ") + what); if (!ok) failures.push(what); };

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // The page works under its Content-Security-Policy: no script, style or request it makes is blocked.
  const blocked = [];
  page.on("console", (message) => {
    if (/Content.Security.Policy/i.test(message.text())) blocked.push(message.text());
  });
  await page.goto(`${base}/procnode/ui/`);
  await page.waitForFunction(() => document.getElementById("rules-editor").value.includes("\"rules\""));
  check((await page.textContent("#rules-version")).includes("version 0"), "the built-in rule set is shown");
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
  await page.screenshot({ path: `${shots}/1-loaded.png`, fullPage: true });

  const chestRules = {
    rules: [
      { id: "chest-ct", description: "Chest CT to the lung processor",
        match: { all: [{ attribute: "Modality", equals: "CT" },
                       { attribute: "StudyDescriptoin", contains: "chest", case_sensitive: false }] },
        action: { pipeline: "lung-emphysema", parameters: { variant: "fast" }, destinations: ["NOWHERE"] } },
      { id: "brain-mr", description: "Brain MR: nowhere", enabled: false,
        match: { attribute: "Modality", equals: "MR" }, action: { pipeline: "volume-stats" } },
    ],
  };
  await page.fill("#rules-editor", JSON.stringify(chestRules, null, 2));
  await page.waitForSelector("#validation .error-list");
  const error = await page.textContent("#validation");
  check(error.includes("/rules/0/match/all/1/attribute") && error.includes("StudyDescriptoin"),
        "a misspelt keyword is shown with its JSON pointer");
  check(await page.isDisabled("#save"), "an invalid rule set cannot be saved");
  await page.screenshot({ path: `${shots}/2-validation-error.png`, fullPage: true });

  chestRules.rules[0].match.all[1].attribute = "StudyDescription";
  await page.fill("#rules-editor", JSON.stringify(chestRules, null, 2));
  await page.waitForSelector("#validation .ok");
  check(!(await page.isDisabled("#save")), "the fixed rule set can be saved");
  await page.fill("#comment", "chest CT only");
  await page.click("#save");
  await page.waitForSelector("#save-result .ok");
  check((await page.textContent("#rules-version")).includes("version 1"), "saving makes version 1");

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

  // A draft (not saved): the brain rule enabled, the chest rule's variant changed; replayed over
  // the stored studies it shows what would change, per study, and nothing is queued.
  const draft = structuredClone(chestRules);
  draft.rules[0].action.parameters.variant = "accurate";
  draft.rules[1].enabled = true;
  await page.fill("#rules-editor", JSON.stringify(draft, null, 2));
  await page.waitForSelector("#validation .ok");
  const jobsBefore = await page.evaluate(async () => (await (await fetch("../jobs")).json()).length);
  await page.fill("#replay-last", "5");
  await page.click("#replay");
  await page.waitForSelector("#replay-table");
  const summary = await page.textContent("#replay-result .replay-summary");
  check(/^2 studies \(saved version 1\): 1 job\(s\) now, 2 with the draft; 1 created, 0 no longer created, 1 with other parameters/
    .test(summary), `the replay sums up what the draft changes (${summary})`);
  const chestRow = await page.textContent(`#replay-table tr[data-study="${chestStudy}"]`);
  check(chestRow.includes("chest-ct") && chestRow.includes("\"variant\":\"fast\"") && chestRow.includes("\"variant\":\"accurate\""),
    "the chest CT's row shows its lung job with other parameters");
  const mrRow = await page.textContent(`#replay-table tr[data-study="${mrStudy}"]`);
  check(mrRow.includes("brain-mr → volume-stats") && (await page.$(`#replay-table tr[data-study="${mrStudy}"] .created`)) !== null,
    "the brain MR's row shows the job the draft would create");
  check(await page.evaluate(async () => (await (await fetch("../jobs")).json()).length) === jobsBefore,
    "replaying queued nothing");
  check((await page.textContent("#rules-version")).includes("version 1"), "and saved nothing");
  await page.screenshot({ path: `${shots}/3c-replay.png`, fullPage: true });
  writeFileSync(`${shots}/saved`, "rules saved and tried\n");

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
  await page.screenshot({ path: `${shots}/4-jobs.png`, fullPage: true });
  const lungJob = await page.getAttribute(lungRow, "data-job");

  // The job's page: how it ran, what it found, the report inline, links to its results.
  await page.click(`${lungRow} button[data-open]`);
  await page.waitForSelector("#job-detail:not([hidden]) .job-measurements");
  check((await page.textContent("#job-detail-title")).startsWith(`Job ${lungJob} · done`), "the job's page opens");
  const measured = await page.textContent("#job-detail .job-measurements");
  check(/total\.volume_ml/.test(measured) && /total\.laa950_percent/.test(measured), "its page lists the measurements");
  const stages = await page.textContent("#job-detail .job-stages");
  check(["fetch", "volume", "process", "store"].every((s) => stages.includes(s)) && / ms/.test(stages),
        "and every stage with its time");
  check((await page.textContent("#job-detail .job-spec")).includes("\"variant\": \"fast\""), "and the job's parameters");
  check((await page.textContent("#job-detail .job-events")).includes("done"), "and its events");
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
  await page.screenshot({ path: `${shots}/5-job-page.png`, fullPage: true });
  await page.click(`${lungRow} button[data-action=resend]`);
  const resent = await page.waitForFunction(async (id) => {
    const job = await (await fetch(`../jobs/${id}`)).json();
    return job.events.some((e) => e.kind === "resend-requested") ? job : null;
  }, lungJob, { timeout: 30000 });
  check((await resent.jsonValue()).events.some((e) => e.kind === "resend-requested" && e.message.includes("NOWHERE")),
        "Resend queues the delivery again (job event)");
  // A done job can be run again (issue 12): Re-run queues it, and it comes back done.
  await page.click(`${lungRow} button[data-action=retry]`);
  let rerun = null;  // polled from the page (an async predicate would not be awaited by waitForFunction)
  for (let i = 0; i < 240 && !rerun; ++i) {
    const job = await page.evaluate(async (id) => (await fetch(`../jobs/${id}`)).json(), lungJob);
    if (job.state === "done" && job.events.some((e) => e.kind === "rerun-requested")) rerun = job;
    else await page.waitForTimeout(500);
  }
  check(rerun !== null && rerun.events.filter((e) => e.kind === "done").length === 2, "Re-run runs the done job again");
  check(blocked.length === 0, `nothing was blocked by the Content-Security-Policy${blocked.length ? ": " + blocked[0] : ""}`);
  // Positive control: the policy is enforced, so an injected inline script is refused.
  await page.evaluate(() => {
    const script = document.createElement("script");
    script.textContent = "window.injected = true;";
    document.body.appendChild(script);
  });
  await page.waitForTimeout(300);
  check(blocked.length > 0 && !(await page.evaluate(() => window.injected === true)),
        "the Content-Security-Policy refuses an injected inline script");
} catch (e) {
  failures.push(String(e));
  console.log("FAIL " + e);
} finally {
  await browser.close();
}
console.log(`${failures.length === 0 ? "all" : failures.length} ${failures.length === 0 ? "checks passed" : "checks failed"}`);
process.exit(failures.length === 0 ? 0 : 1);
