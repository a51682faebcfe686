// Serves one sample page on http://localhost:8080 (the origin `dotnet run --project src/Gateway` allows in Development).
//   node samples/serve.mjs chat        the chat page
//   node samples/serve.mjs dashboard   the live dashboard, and a feed that publishes to it through the REST API
// Set GATEWAY=http://host:port when the gateway is not on http://localhost:5000.
import http from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

const sample = process.argv[2];
const gateway = process.env.GATEWAY ?? "http://localhost:5000";
const port = Number(process.env.PORT ?? 8080);
const here = path.dirname(fileURLToPath(import.meta.url));
if (!["chat", "dashboard"].includes(sample ?? "")) {
  console.error("usage: node samples/serve.mjs chat|dashboard");
  process.exit(2);
}

const page = path.join(here, sample, "index.html");
http.createServer(async (request, response) => {
  if (new URL(request.url, "http://x").pathname !== "/") {
    response.writeHead(404).end();
    return;
  }

  const html = (await readFile(page, "utf8")).replaceAll("http://localhost:5000", gateway);
  response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
}).listen(port, "localhost", () => console.log(`${sample}: http://localhost:${port}/ (gateway ${gateway})`));

if (sample === "dashboard") {
  // A backend publishing a reading a second, as a real service would through the REST API (loopback needs no key).
  let load = 50;
  setInterval(async () => {
    load = Math.max(0, Math.min(100, load + (Math.random() - 0.5) * 20));
    try {
      const answer = await fetch(`${gateway}/api/v1/channels/dashboard:load/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ data: { at: Date.now(), load: Math.round(load * 10) / 10 } }),
      });
      if (!answer.ok) {
        console.error(`publish: ${answer.status} ${await answer.text()}`);
      }
    } catch (error) {
      console.error(`publish: ${error.message} (is the gateway running?)`);
    }
  }, 1000);
}
