// The TypeScript client (as the gateway serves it at /sdk/push.js) in headless Chromium, against real gateway
// processes on loopback. Run by BrowserClientTests, which starts Redis and the nodes and asserts what this reports.
//
// Input: PUSH_BROWSER_TEST={"nodes":[{"ws","http","pid"}],"pagePort":N,"secret":"…"}. Output, on the last line of
// stdout: a JSON report of what the pages received and did. The numbers are judged by the caller, not here.
import http from "node:http";
import crypto from "node:crypto";
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const input = JSON.parse(process.env.PUSH_BROWSER_TEST ?? "{}");
const [first, second] = input.nodes;

function base64url(value) {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

/** An HS256 connection token, as an application backend would mint one. */
function token(user, lifetimeSeconds) {
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${base64url({ alg: "HS256", typ: "JWT" })}.${base64url({ sub: user, iat: now, nbf: now, exp: now + lifetimeSeconds })}`;
  const signature = crypto.createHmac("sha256", input.secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

/** The application's page: loads the client from the gateway with one module script tag and lists what arrives. */
function page(endpoints, channel) {
  return `<!doctype html>
<meta charset="utf-8">
<title>PushService browser test</title>
<link rel="icon" href="data:,">
<ul id="log"></ul>
<script type="module">
  import { PushClient } from "${first.http}/sdk/push.js";
  window.received = [];
  window.resets = 0;
  window.tokenCalls = 0;
  const client = new PushClient({
    endpoints: ${JSON.stringify(endpoints)},
    token: async () => { window.tokenCalls++; return await window.fetchToken(); },
    minReconnectDelay: 50,
    maxReconnectDelay: 1000,
  });
  client.subscribe(${JSON.stringify(channel)}, {
    onMessage: (m) => {
      window.received.push(m.data.seq);
      const item = document.createElement("li");
      item.textContent = String(m.data.seq);
      document.getElementById("log").append(item);
    },
    onReset: () => window.resets++,
    // Ready once the server confirmed the subscription: everything published after it arrives.
    onSubscribed: () => { window.ready = true; },
  });
  window.client = client;
  await client.connect();
</script>`;
}

const pages = new Map();
const server = http.createServer((request, response) => {
  const body = pages.get(request.url);
  response.writeHead(body ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
  response.end(body ?? "not found");
});
await new Promise((resolve) => server.listen(input.pagePort, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${input.pagePort}`;

/** Publishes sequence numbers to one node's REST API until stopped, recording the ones answered 200. */
function publisher(node, channel, intervalMs) {
  const acknowledged = [];
  let stop = false;
  let refused = 0;
  const running = (async () => {
    for (let seq = 1; !stop; seq++) {
      try {
        const answer = await fetch(`${node.http}/api/v1/channels/${channel}/messages`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ data: { seq } }),
        });
        if (answer.status === 200) {
          acknowledged.push(seq);
        } else {
          refused++;
        }
      } catch {
        refused++;
      }

      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    acknowledged,
    get refused() { return refused; },
    async until(count) {
      const deadline = Date.now() + 30_000;
      while (acknowledged.length < count && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      stop = true;
      await running;
    },
  };
}

async function openPage(browser, path, endpoints, channel) {
  pages.set(path, page(endpoints, channel));
  const tab = await browser.newPage();
  const errors = [];
  tab.on("pageerror", (error) => errors.push(String(error)));
  tab.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  await tab.exposeFunction("fetchToken", async () => token("browser-user", 6));
  await tab.goto(`${origin}${path}`);
  await tab.waitForFunction(() => window.ready === true, null, { timeout: 20_000 });
  return { tab, errors };
}

/** Waits until the page has every acknowledged sequence number (or 20 s pass), then reads what it has. */
async function collect(tab, acknowledged) {
  await tab.waitForFunction((expected) => expected.every((seq) => window.received.includes(seq)), acknowledged, { timeout: 20_000 })
    .catch(() => undefined);
  return tab.evaluate(() => ({
    received: window.received,
    shown: document.querySelectorAll("#log li").length,
    resets: window.resets,
    tokenCalls: window.tokenCalls,
    reconnects: window.client.reconnects,
    node: window.client.nodeId,
    state: window.client.state,
  }));
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const report = {};
try {
  // 0. The same module in Node itself, on Node 20's global WebSocket (run with --experimental-websocket).
  {
    const { PushClient } = await import(`${new URL("../../src/Sdk/js/dist/push.js", import.meta.url)}`);
    const client = new PushClient({ endpoints: [second.ws], token: async () => token("node-user", 60) });
    const received = [];
    await new Promise((resolve) => client.subscribe("node-client", { onMessage: (m) => received.push(m.data.seq), onSubscribed: resolve }));
    const publishing = publisher(second, "node-client", 10);
    await publishing.until(20);
    await publishing.stop();
    const deadline = Date.now() + 10_000;
    while (!publishing.acknowledged.every((seq) => received.includes(seq)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    report.node = { received, acknowledged: publishing.acknowledged, shown: received.length, globalWebSocket: typeof globalThis.WebSocket };
    client.close();
  }

  // 1. Tokens that live 6 s, on one node for 14 s: the page refreshes its token on the same connection, and receives.
  {
    const { tab, errors } = await openPage(browser, "/refresh.html", [second.ws], "browser-refresh");
    const publishing = publisher(second, "browser-refresh", 200);
    await new Promise((resolve) => setTimeout(resolve, 14_000));
    await publishing.stop();
    report.refresh = { ...(await collect(tab, publishing.acknowledged)), acknowledged: publishing.acknowledged, errors };
    await tab.close();
  }

  // 2. The chat sample, as served to users, in two tabs on the second node: what one sends, both show.
  {
    const html = (await readFile(new URL("../../samples/chat/index.html", import.meta.url), "utf8")).replaceAll("http://localhost:5000", second.http);
    pages.set("/chat.html", html);
    const tabs = [];
    for (const user of ["alice", "bob"]) {
      const tab = await browser.newPage();
      const errors = [];
      tab.on("pageerror", (error) => errors.push(String(error)));
      await tab.goto(`${origin}/chat.html`);
      await tab.waitForFunction(() => document.getElementById("state").textContent === "connected", null, { timeout: 20_000 });
      await tab.fill("input[name=user]", user);
      tabs.push({ user, tab, errors });
    }

    await tabs[0].tab.waitForFunction(() => document.getElementById("people").textContent === "2 here", null, { timeout: 10_000 }).catch(() => undefined);
    await tabs[0].tab.fill("input[name=text]", "hi bob");
    await tabs[0].tab.press("input[name=text]", "Enter");
    report.chat = {};
    for (const { user, tab, errors } of tabs) {
      await tab.waitForFunction(() => document.querySelectorAll("#messages li.message").length > 0, null, { timeout: 10_000 }).catch(() => undefined);
      report.chat[user] = {
        messages: await tab.$$eval("#messages li.message", (items) => items.map((item) => item.textContent)),
        people: await tab.textContent("#people"),
        errors,
      };
    }

    // Closed only once both were read: the first to leave would change the other's count.
    for (const { tab } of tabs) {
      await tab.close();
    }
  }

  // 3. The dashboard sample: readings published before the page opened come from history, later ones live, once each.
  {
    const publish = async (load) => {
      const answer = await fetch(`${second.http}/api/v1/channels/dashboard:load/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ data: { at: Date.now(), load } }),
      });
      return answer.status;
    };
    const statuses = [];
    for (const load of [10, 20, 30, 40, 50]) statuses.push(await publish(load));
    const html = (await readFile(new URL("../../samples/dashboard/index.html", import.meta.url), "utf8")).replaceAll("http://localhost:5000", second.http);
    pages.set("/dashboard.html", html);
    const tab = await browser.newPage();
    const errors = [];
    tab.on("pageerror", (error) => errors.push(String(error)));
    await tab.goto(`${origin}/dashboard.html`);
    await tab.waitForFunction(() => document.getElementById("value").textContent === "50%", null, { timeout: 20_000 }).catch(() => undefined);
    const fromHistory = await tab.getAttribute("#line", "points");
    for (const load of [60, 70]) statuses.push(await publish(load));
    await tab.waitForFunction(() => document.getElementById("value").textContent === "70%", null, { timeout: 10_000 }).catch(() => undefined);
    report.dashboard = { statuses, fromHistory, live: await tab.getAttribute("#line", "points"), value: await tab.textContent("#value"), errors };
    await tab.close();
  }

  // 4. The page's node SIGKILLed while publishing goes on through the other: the page reconnects there and recovers.
  {
    const { tab, errors } = await openPage(browser, "/failover.html", [first.ws, second.ws], "browser-failover");
    const before = await tab.evaluate(() => window.client.nodeId);
    const publishing = publisher(second, "browser-failover", 20);
    await publishing.until(30);
    process.kill(first.pid, "SIGKILL");
    const killedAt = publishing.acknowledged.length;
    await publishing.until(killedAt + 60);
    await publishing.stop();
    report.failover = { ...(await collect(tab, publishing.acknowledged)), before, acknowledged: publishing.acknowledged, refused: publishing.refused, errors };
    await tab.close();
  }
} finally {
  await browser.close();
  server.close();
}

console.log(JSON.stringify(report));
