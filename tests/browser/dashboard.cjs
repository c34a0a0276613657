// Drives the dashboard in headless Chromium (playwright-core, the system
// chromium): sign in (a wrong token first), start a task from the form,
// watch it complete, open a node and its timeline, then the drivers and BMC
// pages. Run by
// tests/tests/dashboard.rs with DRYDOCK_URL, DRYDOCK_TOKEN, SHOTS (the
// screenshot directory) and PLAYWRIGHT_CORE (the module's path); prints one
// JSON line with what it saw, or fails with a message.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const base = process.env.DRYDOCK_URL;
const token = process.env.DRYDOCK_TOKEN;
const shots = process.env.SHOTS;
const nodes = process.env.NODES.split(",");

function check(cond, what) { if (!cond) throw new Error(`dashboard: ${what}`); }

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const seen = { steps: [] };
  const step = (s) => { seen.steps.push(s); process.stderr.write(`dashboard: ${s}\n`); };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const foreign = [];
    page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // Failed answers (the wrong token's 401 is expected), by status and path.
    const failed = [];
    page.on("response", (r) => { if (r.status() >= 400) failed.push([r.status(), new URL(r.url()).pathname]); });

    // Sign in: a wrong token is refused, the right one opens the tasks page.
    await page.goto(base + "/");
    await page.fill("#token", "not-a-valid-token-at-all");
    await page.click("#signin-form button");
    await page.waitForSelector("#signin-error:has-text('refused')");
    step("wrong token refused");
    await page.fill("#token", token);
    await page.click("#signin-form button");
    await page.waitForSelector("#start-task");
    await page.screenshot({ path: `${shots}/1-signed-in.png`, fullPage: true });
    step("signed in");

    // Start power_cycle_node on the given nodes.
    await page.selectOption("#start-task select[name=action]", "power_cycle_node");
    await page.fill("#start-task input[name=nodes]", nodes.join(","));
    await page.click("#start-task button[type=submit]");
    await page.waitForSelector("#task-id");
    const taskId = (await page.textContent("#task-id")).trim();
    seen.task_id = taskId;
    seen.first_status = await page.getAttribute("#task-status .badge", "data-status");
    await page.screenshot({ path: `${shots}/2-task-started.png`, fullPage: true });
    step(`task ${taskId} started (${seen.first_status})`);

    // Watch it complete (the page polls the API).
    await page.waitForSelector("#task-status .badge[data-status=complete]", { timeout: 30000 });
    seen.result = await page.getAttribute("#task-result .badge", "data-status");
    seen.node_rows = await page.$$eval("#task-nodes tbody tr", (rows) => rows.map((r) => r.dataset.node));
    seen.tree = await page.$$eval("#task-tree [data-step]", (els) => els.map((e) => e.dataset.step));
    seen.messages = await page.$$eval("#task-messages tbody tr", (rows) => rows.length);
    check(!(await page.textContent("#view")).includes("null"), "the task page shows a stray null");
    await page.screenshot({ path: `${shots}/3-task-complete.png`, fullPage: true });
    step(`task complete: ${seen.result}, nodes ${seen.node_rows.join(",")}`);

    // Open a node from the task.
    await page.click(`#task-nodes tr[data-node="${nodes[0]}"]`);
    await page.waitForSelector("#node-name");
    // The timeline (the node's events from the API) shows the task's driver
    // calls once the timeline's writer stored them (the page re-reads it).
    await page.waitForSelector('#node-timeline tbody tr[data-kind="driver_call"]', { timeout: 30000 });
    seen.node = {
      name: (await page.textContent("#node-name")).trim(),
      power: (await page.textContent("#node-power")).trim(),
      last: (await page.textContent("#node-last")).trim(),
      // [seq, kind, action, outcome] per row, newest first.
      timeline: await page.$$eval("#node-timeline tbody tr", (rows) => rows.map((r) =>
        [Number(r.dataset.seq), r.dataset.kind, r.cells[2].textContent, r.dataset.outcome || "-"])),
    };
    check(!(await page.textContent("#view")).includes("null"), "the node page shows a stray null");
    await page.screenshot({ path: `${shots}/4-node.png`, fullPage: true });
    step(`node ${seen.node.name}: power ${seen.node.power}`);

    // Drivers and BMC health.
    await page.click("a[data-nav=drivers]");
    await page.waitForSelector("#drivers");
    seen.drivers = await page.$$eval("#drivers tbody tr", (rows) => rows.map((r) =>
      [r.dataset.driver, Number(r.cells[4].textContent), r.dataset.rollback, r.cells[6].textContent]));
    await page.screenshot({ path: `${shots}/5-drivers.png`, fullPage: true });
    await page.click("a[data-nav=bmcs]");
    await page.waitForSelector("#bmcs");
    // [bmc, nodes, calls, errors, last error] per BMC.
    seen.bmcs = await page.$$eval("#bmcs tbody tr", (rows) => rows.map((r) =>
      [r.dataset.bmc, r.cells[1].textContent, Number(r.dataset.calls), Number(r.dataset.errors), r.cells[8].textContent]));
    seen.bmc_page_text = await page.textContent("#view");
    await page.screenshot({ path: `${shots}/6-bmcs.png`, fullPage: true });
    step("drivers and BMC pages shown");

    // Sign out returns to the sign-in form.
    await page.click("#signout");
    await page.waitForSelector("#signin:not([hidden])");
    step("signed out");

    seen.foreign_requests = foreign;
    seen.errors = errors;
    seen.failed = failed;
    process.stdout.write(JSON.stringify(seen) + "\n");
  } finally {
    await browser.close();
  }
})().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
