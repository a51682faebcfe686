// The web console (/console) in headless Chromium against two real gateway processes on one Redis. Run by ConsoleTests,
// which starts Redis and the nodes and asserts what this reports.
//
// Input: PUSH_CONSOLE_TEST={"nodes":[{"http","node"}],"adminKey","readKey","screenshot"}. Output, on the last line of
// stdout: a JSON report of what the page showed and did. The numbers are judged by the caller, not here.
import { chromium } from "playwright-core";

const input = JSON.parse(process.env.PUSH_CONSOLE_TEST ?? "{}");
const [first, second] = input.nodes;
const report = { pageErrors: [], policyViolations: [] };

/** Publishes through one node's REST API with the admin key and returns the answer's body. */
async function publish(node, channel, data) {
  const answer = await fetch(`${node.http}/api/v1/channels/${encodeURIComponent(channel)}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${input.adminKey}` },
    body: JSON.stringify({ data }),
  });
  if (answer.status !== 200) {
    throw new Error(`publish to ${channel} on ${node.node} answered ${answer.status}: ${await answer.text()}`);
  }
  return await answer.json();
}

/** What the log shows, newest first. */
const logLines = (page) => page.locator("#log li").allInnerTexts();

async function waitForLog(page, text, timeout = 15000) {
  await page.locator("#log li", { hasText: text }).first().waitFor({ timeout });
}

async function chartTotals(page) {
  return await page.evaluate(() => ({
    deliveries: Number(document.getElementById("deliveries-chart").dataset.total ?? "0"),
    publications: Number(document.getElementById("publications-chart").dataset.total ?? "0"),
    latestPublications: Number(document.getElementById("publications-chart").dataset.latest ?? "0"),
    points: document.querySelector("#publications-chart polyline")?.getAttribute("points") ?? "",
  }));
}

async function signIn(page, key) {
  await page.locator("#sign-in").waitFor({ state: "visible", timeout: 15000 });
  await page.fill("#api-key", key);
  await page.click("#sign-in-form button[type=submit]");
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => report.pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy/i.test(message.text())) {
      report.policyViolations.push(message.text());
    }
  });
  await page.goto(`${first.http}/console`);
  report.url = page.url();

  // Asked for a key first; a wrong one and one without the admin scope are refused with the API's reason.
  await signIn(page, "wrong-key-0123456789abcdef");
  await page.locator("#sign-in-error").waitFor({ state: "visible", timeout: 15000 });
  report.wrongKey = {
    error: await page.locator("#sign-in-error").innerText(),
    dashboardHidden: await page.locator("#dashboard").isHidden(),
    stored: await page.evaluate(() => sessionStorage.length),
  };
  await signIn(page, input.readKey);
  await page.locator("#sign-in-error", { hasText: "admin" }).waitFor({ timeout: 15000 });
  report.readKey = { error: await page.locator("#sign-in-error").innerText(), dashboardHidden: await page.locator("#dashboard").isHidden() };

  // The admin key opens the dashboard, which shows both nodes.
  await signIn(page, input.adminKey);
  await page.locator("#dashboard").waitFor({ state: "visible", timeout: 15000 });
  await page.waitForFunction((count) => document.querySelectorAll("#nodes tbody tr[data-key]").length >= count, input.nodes.length, { timeout: 20000 });
  report.nodesShown = await page.locator("#nodes tbody tr[data-key]").evaluateAll((rows) => rows.map((row) => row.dataset.key));
  report.keyInUrl = page.url().includes(input.adminKey);
  report.keyStoredInSession = await page.evaluate((key) => Object.keys(sessionStorage).some((k) => sessionStorage.getItem(k) === key), input.adminKey);
  report.keyStoredLocally = await page.evaluate(() => localStorage.length);

  // The playground subscribes on this page's node; a message published through REST on the other node arrives.
  await page.fill("#subscribe-channel", "console-e2e");
  await page.click("#subscribe-form button[type=submit]");
  await waitForLog(page, "subscribed");
  report.socketState = await page.locator("#socket-state").innerText();
  await publish(second, "console-e2e", { hello: `from ${second.node}` });
  await waitForLog(page, `from ${second.node}`);
  report.crossNode = (await logLines(page)).filter((line) => line.includes(`from ${second.node}`));

  // Subscribing with 'since' recovers what came after that offset first.
  const published = [];
  for (let i = 1; i <= 4; i++) {
    published.push(await publish(second, "console-since", { n: i }));
  }
  await page.fill("#subscribe-channel", "console-since");
  await page.fill("#since-epoch", published[0].epoch);
  await page.fill("#since-offset", String(published[1].offset));
  await page.click("#subscribe-form button[type=submit]");
  await waitForLog(page, "recovered");
  report.recovered = (await logLines(page)).filter((line) => line.includes("console-since #")).reverse();
  report.sinceOffset = published[1].offset;

  // History and presence through the REST API.
  await page.fill("#read-channel", "console-since");
  await page.click("#read-form button[value=history]");
  await waitForLog(page, "4 message(s)");
  await page.fill("#read-channel", "console-e2e");
  await page.click("#read-form button[value=presence]");
  await waitForLog(page, "presence");
  report.presence = (await logLines(page)).find((line) => line.includes("presence"));

  // Publish from the page itself; bad JSON is refused in the page with a reason.
  await page.fill("#publish-channel", "console-e2e");
  await page.fill("#publish-data", "{not json");
  await page.click("#publish-form button[type=submit]");
  report.badJson = await page.locator("#playground-error").innerText();
  await page.fill("#publish-data", '{"from":"the page"}');
  await page.click("#publish-form button[type=submit]");
  await waitForLog(page, '{"from":"the page"}');
  report.publishedFromPage = true;

  // Under load the chart moves: about 100 publications a second for 8 s through the other node.
  const before = await chartTotals(page);
  const loadStarted = Date.now();
  let sent = 0;
  while (Date.now() - loadStarted < 8000) {
    const batch = [];
    for (let i = 0; i < 10; i++) {
      batch.push(publish(i % 2 === 0 ? second : first, i % 2 === 0 ? "console-e2e" : `console-load-${i}`, { n: sent + i }));
    }
    await Promise.all(batch);
    sent += batch.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  report.loadPublished = sent;
  await page.waitForFunction(
    (target) => Number(document.getElementById("publications-chart").dataset.total ?? "0") >= target,
    before.publications + sent * 0.9,
    { timeout: 20000 },
  ).catch(() => undefined);
  const after = await chartTotals(page);
  report.chart = { before, after };
  report.busiest = await page.locator("#channels tbody tr[data-key]").evaluateAll((rows) => rows.map((row) => [row.dataset.key, row.cells[1].textContent]));
  report.tiles = {
    nodes: await page.locator("#total-nodes").innerText(),
    connections: await page.locator("#total-connections").innerText(),
  };

  // A client that breaks the protocol on the other node shows under disconnects by its close code.
  const socket = new WebSocket(`${second.http.replace("http", "ws")}/ws`);
  await new Promise((resolve, reject) => {
    socket.onopen = () => socket.send("not a command");
    socket.onclose = (event) => resolve(event.code);
    socket.onerror = () => undefined;
    setTimeout(() => reject(new Error("the bad client was not closed")), 10000);
  });
  await page.locator("#disconnects tbody tr[data-key='4000']").waitFor({ timeout: 20000 });
  report.disconnects = await page.locator("#disconnects tbody tr[data-key]").evaluateAll((rows) => rows.map((row) => [...row.cells].map((c) => c.textContent)));

  await page.screenshot({ path: input.screenshot, fullPage: true });

  // Signing out forgets the key and closes the page's socket.
  await page.click("#sign-out");
  await page.locator("#sign-in").waitFor({ state: "visible", timeout: 5000 });
  report.afterSignOut = { stored: await page.evaluate(() => sessionStorage.length), dashboardHidden: await page.locator("#dashboard").isHidden() };
} finally {
  await browser.close();
}

console.log(JSON.stringify(report));
