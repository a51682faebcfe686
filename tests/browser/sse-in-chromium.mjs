// Server-Sent Events in headless Chromium: a page behind a real nginx (which breaks WebSockets) follows a channel with
// the browser's own EventSource; the page's node is SIGKILLed while publishing goes on, EventSource reconnects through
// nginx to the other node with Last-Event-ID, and the page's received sequence must have no gap and no duplicate. A
// second EventSource on the same page goes straight to a node, across origins, and the TypeScript client (loaded from
// /sdk/push.js through nginx) finds its WebSockets refused, falls back to the event stream and goes through the same. Run by ServerSentEventsTests, which
// starts Redis, the nodes and nginx and judges the report.
//
// Input: PUSH_SSE_TEST={"proxy","pagePath","nodes":[{"http","pid"}],"channel"}. Output, on the last line: a JSON report.
import { chromium } from "playwright-core";
import { writeFile } from "node:fs/promises";

const input = JSON.parse(process.env.PUSH_SSE_TEST ?? "{}");
const [first, second] = input.nodes;
const report = { pageErrors: [] };

const page = `<!doctype html>
<meta charset="utf-8">
<title>SSE test</title>
<script>
  window.streams = {};
  function follow(name, url) {
    const state = window.streams[name] = { received: [], opens: 0, errors: 0, subscribed: 0, resets: 0, lastId: "" };
    const source = new EventSource(url);
    source.onopen = () => state.opens++;
    source.onerror = () => state.errors++;
    source.onmessage = (event) => {
      const push = JSON.parse(event.data);
      state.lastId = event.lastEventId;
      if (push.type === "message") state.received.push(push.data.seq);
      if (push.type === "subscribed") state.subscribed++;
      if (push.type === "reset") state.resets++;
    };
  }
  const channel = encodeURIComponent(${JSON.stringify(input.channel)});
  follow("proxied", "/sse?channel=" + channel);
  follow("direct", ${JSON.stringify(second.http)} + "/sse?channel=" + channel);
</script>
<script type="module">
  import { PushClient } from "/sdk/push.js";
  const state = window.streams.client = { received: [], opens: 0, errors: 0, subscribed: 0, resets: 0, transports: [], nodes: [] };
  const client = new PushClient({ endpoints: [location.origin.replace("http", "ws") + "/ws"], minReconnectDelay: 50, maxReconnectDelay: 1000 });
  client.on("connected", (c) => { state.opens++; state.transports.push(client.transport); state.nodes.push(c.node); });
  client.on("disconnected", () => state.errors++);
  client.subscribe(${JSON.stringify(input.channel)}, {
    onMessage: (m) => state.received.push(m.data.seq),
    onSubscribed: () => state.subscribed++,
    onReset: () => state.resets++,
  });
  window.client = client;
</script>`;
await writeFile(input.pagePath, page);

async function publish(node, seq) {
  const answer = await fetch(`${node.http}/api/v1/channels/${encodeURIComponent(input.channel)}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ data: { seq } }),
  });
  return answer.status === 200;
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const tab = await browser.newPage();
  tab.on("pageerror", (error) => report.pageErrors.push(error.message));
  await tab.goto(`${input.proxy}/test/sse.html`);
  await tab.waitForFunction(() => window.streams.proxied.subscribed >= 1 && window.streams.direct.subscribed >= 1
    && window.streams.client?.subscribed >= 1, null, { timeout: 20000 });
  report.clientTransport = await tab.evaluate(() => window.client.transport);
  report.clientPublish = await tab.evaluate(() => window.client.publish("x", 1).then(() => "sent", (e) => e.code));

  // Publishing goes on throughout, through the node that stays up.
  const acknowledged = [];
  let stop = false;
  const publishing = (async () => {
    for (let seq = 1; !stop; seq++) {
      if (await publish(second, seq)) acknowledged.push(seq);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
  })();

  await tab.waitForFunction(() => window.streams.proxied.received.length >= 15 && window.streams.client.received.length >= 15, null, { timeout: 20000 });
  report.idBeforeKill = await tab.evaluate(() => window.streams.proxied.lastId);
  process.kill(first.pid, "SIGKILL");
  report.killedAt = acknowledged.length;

  // EventSource comes back by itself (after the stream's retry), through nginx to the other node.
  await tab.waitForFunction(() => window.streams.proxied.opens >= 2 && window.streams.client.opens >= 2, null, { timeout: 30000 });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  stop = true;
  await publishing;
  const last = acknowledged[acknowledged.length - 1];
  await tab.waitForFunction((seq) => ["proxied", "direct", "client"].every((name) => window.streams[name].received.includes(seq)), last, { timeout: 20000 })
    .catch(() => undefined);

  report.acknowledged = acknowledged;
  report.streams = await tab.evaluate(() => window.streams);
} finally {
  await browser.close();
}

console.log(JSON.stringify(report));
