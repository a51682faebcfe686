// The web console's script: the cluster from the REST API every two seconds, and a playground that subscribes through
// the browser client. It only ever writes text into the page (textContent), so nothing a channel name or a publication
// holds can run as markup.
import { PushClient } from "../sdk/push.js";
const keyStorage = "pushservice.console.apiKey";
const refreshMs = 2000;
const logLimit = 200;
const busiestChannels = 20;
/** What the close codes of the wire contract mean, for the disconnects table. */
const closeCodes = {
    1000: "normal close",
    1001: "going away (node draining or stopping)",
    1006: "connection lost (no close frame)",
    4000: "bad request",
    4001: "unauthorized",
    4003: "forbidden",
    4009: "message too large",
    4029: "rate limited",
    4500: "slow consumer",
    4503: "unavailable",
};
/** A REST API refusal, with the problem details' text. */
class ApiError extends Error {
    status;
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}
function element(id) {
    const found = document.getElementById(id);
    if (!found) {
        throw new Error(`The page has no #${id}.`);
    }
    return found;
}
/** Calls the REST API beside the page (../api/v1/…), with the signed-in key if there is one. */
async function api(path, init = {}) {
    const headers = new Headers(init.headers);
    const key = sessionStorage.getItem(keyStorage);
    if (key) {
        headers.set("Authorization", `Bearer ${key}`);
    }
    let response;
    try {
        response = await fetch(new URL(`../api/v1/${path}`, location.href), { ...init, headers, cache: "no-store" });
    }
    catch {
        throw new ApiError(0, "The gateway cannot be reached.");
    }
    const text = await response.text();
    let body = undefined;
    try {
        body = text ? JSON.parse(text) : undefined;
    }
    catch {
        body = undefined;
    }
    if (!response.ok) {
        const problem = (body ?? {});
        throw new ApiError(response.status, problem.detail ?? problem.title ?? `${response.status} ${response.statusText}`);
    }
    return body;
}
const channelPath = (channel) => `channels/${encodeURIComponent(channel)}`;
function cell(row, text, numeric = false) {
    const td = row.insertCell();
    td.textContent = text;
    if (numeric) {
        td.className = "num";
    }
    return td;
}
function fillTable(id, rows, empty, numericFrom = 1, key) {
    const body = element(id).tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
        const row = body.insertRow();
        row.className = "empty";
        const td = cell(row, empty);
        td.colSpan = element(id).tHead.rows[0].cells.length;
        return;
    }
    for (const values of rows) {
        const row = body.insertRow();
        if (key) {
            row.dataset.key = key(values);
        }
        values.forEach((value, i) => cell(row, value, i >= numericFrom));
    }
}
const number = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
function uptime(seconds) {
    if (seconds < 120)
        return `${seconds} s`;
    if (seconds < 7200)
        return `${Math.floor(seconds / 60)} min`;
    if (seconds < 172800)
        return `${Math.floor(seconds / 3600)} h`;
    return `${Math.floor(seconds / 86400)} d`;
}
/** Draws a series as an area under a line, scaled to its own peak, and records what it drew for anyone reading the page. */
function drawChart(id, series, caption) {
    const svg = element(id);
    const ns = "http://www.w3.org/2000/svg";
    const peak = Math.max(1, ...series);
    const width = 300;
    const height = 100;
    const step = series.length > 1 ? width / (series.length - 1) : width;
    const points = series.map((value, i) => `${(i * step).toFixed(1)},${(height - (value / peak) * (height - 4)).toFixed(1)}`);
    const children = [];
    for (const fraction of [0.25, 0.5, 0.75]) {
        const line = document.createElementNS(ns, "line");
        line.setAttribute("class", "grid");
        line.setAttribute("x1", "0");
        line.setAttribute("x2", String(width));
        line.setAttribute("y1", String(height * fraction));
        line.setAttribute("y2", String(height * fraction));
        children.push(line);
    }
    const area = document.createElementNS(ns, "polygon");
    area.setAttribute("class", "area");
    area.setAttribute("points", `0,${height} ${points.join(" ")} ${width},${height}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", "line");
    line.setAttribute("points", points.join(" "));
    children.push(area, line);
    svg.replaceChildren(...children);
    const latest = series.length > 0 ? series[series.length - 1] : 0;
    svg.dataset.peak = String(peak);
    svg.dataset.latest = String(latest);
    svg.dataset.total = String(series.reduce((sum, value) => sum + value, 0));
    element(caption).textContent = `now ${number.format(latest)}/s, peak ${number.format(peak)}/s`;
}
// ---------------------------------------------------------------------------------------------------------------------
// The dashboard.
let refreshTimer;
function setStatus(text, bad = false) {
    const status = element("status");
    status.textContent = text;
    status.classList.toggle("bad", bad);
}
async function refresh() {
    try {
        const [info, channels, activity] = await Promise.all([
            api("info"),
            api("channels"),
            api("admin/activity"),
        ]);
        render(info.nodes, channels.channels, activity);
        setStatus(`Updated ${new Date().toLocaleTimeString()} from ${info.nodes.length} node${info.nodes.length === 1 ? "" : "s"}`);
    }
    catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
            showSignIn(error.message);
            return;
        }
        setStatus(error instanceof Error ? `Not updated: ${error.message}` : "Not updated", true);
    }
    refreshTimer = window.setTimeout(refresh, refreshMs);
}
function render(nodes, channels, activity) {
    const rates = new Map(activity.nodes.map((n) => [n.node, n]));
    const sum = (values) => values.reduce((total, value) => total + value, 0);
    element("total-nodes").textContent = String(nodes.length);
    element("total-connections").textContent = number.format(sum(nodes.map((n) => n.connections)));
    element("total-subscriptions").textContent = number.format(sum(nodes.map((n) => n.subscriptions)));
    element("total-publish-rate").textContent = number.format(sum(activity.nodes.map((n) => n.publishRate)));
    element("total-delivery-rate").textContent = number.format(sum(activity.nodes.map((n) => n.deliveryRate)));
    fillTable("nodes", nodes.map((n) => [
        n.node,
        number.format(n.connections),
        number.format(n.subscriptions),
        number.format(rates.get(n.node)?.publishRate ?? 0),
        number.format(rates.get(n.node)?.deliveryRate ?? 0),
        uptime(n.uptimeSeconds),
    ]), "No node has reported yet.", 1, (row) => row[0]);
    const busiest = [...channels].sort((a, b) => b.subscribers - a.subscribers || a.channel.localeCompare(b.channel)).slice(0, busiestChannels);
    fillTable("channels", busiest.map((c) => [c.channel, number.format(c.subscribers)]), "No channel has subscribers.", 1, (row) => row[0]);
    const disconnects = Object.entries(activity.disconnects)
        .map(([code, count]) => ({ code: Number(code), count }))
        .sort((a, b) => b.count - a.count || a.code - b.code);
    fillTable("disconnects", disconnects.map((d) => [String(d.code), closeCodes[d.code] ?? (d.code >= 4000 ? "application code" : "WebSocket code"), number.format(d.count)]), "None.", 2, (row) => row[0]);
    drawChart("deliveries-chart", activity.deliveries, "deliveries-now");
    drawChart("publications-chart", activity.publications, "publications-now");
}
// ---------------------------------------------------------------------------------------------------------------------
// Signing in: the API decides. A 401 or 403 from the admin endpoint shows the form with the API's reason.
function showSignIn(reason) {
    window.clearTimeout(refreshTimer);
    closeSocket();
    element("dashboard").hidden = true;
    element("sign-in").hidden = false;
    element("sign-out").hidden = true;
    const error = element("sign-in-error");
    error.textContent = reason ?? "";
    error.hidden = !reason;
    setStatus(sessionStorage.getItem(keyStorage) ? "Signed out" : "Not signed in");
    element("api-key").focus();
}
async function start() {
    const hadKey = sessionStorage.getItem(keyStorage) !== null;
    try {
        await api("admin/activity");
    }
    catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
            // A key that does not work is forgotten, so the form starts empty. Asked for a key before giving one, the form
            // needs no reason; a refused key, or a gateway that takes none from here, gets the API's.
            sessionStorage.removeItem(keyStorage);
            showSignIn(hadKey || error.status === 403 ? error.message : undefined);
            return;
        }
        setStatus(error instanceof Error ? error.message : String(error), true);
        refreshTimer = window.setTimeout(start, refreshMs);
        return;
    }
    element("sign-in").hidden = true;
    element("dashboard").hidden = false;
    element("sign-out").hidden = sessionStorage.getItem(keyStorage) === null;
    await refresh();
}
element("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = element("api-key");
    sessionStorage.setItem(keyStorage, input.value.trim());
    input.value = "";
    void start();
});
element("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(keyStorage);
    showSignIn();
});
// ---------------------------------------------------------------------------------------------------------------------
// The playground: one WebSocket through the browser client for subscriptions; publish, history and presence through the
// REST API with the signed-in key, so they work in every namespace the key may use.
let client;
const subscriptions = new Map();
function log(kind, text, className = "") {
    const list = element("log");
    const item = document.createElement("li");
    item.className = className;
    const label = document.createElement("span");
    label.className = "kind";
    label.textContent = `${new Date().toLocaleTimeString()} ${kind}`;
    item.append(label, document.createTextNode(text));
    list.prepend(item);
    while (list.children.length > logLimit) {
        list.lastElementChild.remove();
    }
}
function showPlaygroundError(message) {
    const error = element("playground-error");
    error.textContent = message ?? "";
    error.hidden = !message;
}
function socketClient() {
    if (client) {
        return client;
    }
    const address = new URL("../ws", location.href);
    address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
    const token = element("connection-token").value.trim();
    client = new PushClient({ endpoints: [address.toString()], token: token || undefined, name: "pushservice-console" });
    const state = element("socket-state");
    client.on("state", (value) => {
        state.textContent = value === "connected" && client?.nodeId ? `connected to ${client.nodeId}` : value;
        state.dataset.state = value;
    });
    client.on("disconnected", (close) => {
        if (!close.reconnect) {
            log("closed", `${close.code} ${close.reason}`, "failure");
        }
    });
    client.connect().catch((error) => showPlaygroundError(`Could not connect: ${error instanceof Error ? error.message : String(error)}`));
    return client;
}
function closeSocket() {
    client?.close();
    client = undefined;
    subscriptions.clear();
    element("subscriptions").replaceChildren();
    element("socket-state").textContent = "not connected";
}
function renderSubscriptions() {
    const list = element("subscriptions");
    list.replaceChildren(...[...subscriptions.keys()].map((channel) => {
        const item = document.createElement("li");
        item.dataset.channel = channel;
        item.append(document.createTextNode(channel));
        const stop = document.createElement("button");
        stop.type = "button";
        stop.textContent = "×";
        stop.title = `Unsubscribe from ${channel}`;
        stop.addEventListener("click", () => {
            void subscriptions.get(channel)?.unsubscribe();
            subscriptions.delete(channel);
            renderSubscriptions();
            log("unsubscribed", channel);
        });
        item.append(stop);
        return item;
    }));
}
element("subscribe-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showPlaygroundError();
    const channel = element("subscribe-channel").value.trim();
    const epoch = element("since-epoch").value.trim();
    const offsetText = element("since-offset").value.trim();
    if (subscriptions.has(channel)) {
        showPlaygroundError(`Already subscribed to ${channel}.`);
        return;
    }
    let since;
    if (offsetText !== "") {
        const offset = Number(offsetText);
        if (!Number.isInteger(offset) || offset < 0 || epoch === "") {
            showPlaygroundError("Recovering needs both the epoch and a whole offset of 0 or more.");
            return;
        }
        since = { epoch, offset };
    }
    const subscription = socketClient().subscribe(channel, {
        since,
        onMessage: (message) => log(`${message.channel} #${message.offset}`, JSON.stringify(message.data), "message"),
        onSubscribed: (position, recovered) => log("subscribed", `${channel} at ${position.epoch}:${position.offset}${since ? (recovered ? ", recovered" : ", not all recovered") : ""}`),
        onReset: (position) => log("reset", `${channel}: history no longer holds what was missed; now at ${position.epoch}:${position.offset}`, "failure"),
        onJoin: (who) => log("join", `${channel}: ${who.user || "(anonymous)"} ${who.client}`),
        onLeave: (who) => log("leave", `${channel}: ${who.user || "(anonymous)"} ${who.client}`),
        onError: (error) => {
            subscriptions.delete(channel);
            renderSubscriptions();
            log("refused", `${channel}: ${error.code} ${error.message}`, "failure");
        },
    });
    subscriptions.set(channel, subscription);
    renderSubscriptions();
});
element("publish-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showPlaygroundError();
    const channel = element("publish-channel").value.trim();
    const text = element("publish-data").value;
    let data;
    try {
        data = JSON.parse(text);
    }
    catch (error) {
        showPlaygroundError(`The data is not JSON: ${error instanceof Error ? error.message : String(error)}`);
        return;
    }
    try {
        const result = await api(`${channelPath(channel)}/messages`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ data }),
        });
        log("published", `${channel} #${result.offset} (epoch ${result.epoch})`);
    }
    catch (error) {
        showPlaygroundError(`Publish refused: ${error instanceof Error ? error.message : String(error)}`);
    }
});
element("read-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showPlaygroundError();
    const channel = element("read-channel").value.trim();
    const what = event.submitter?.value ?? "history";
    try {
        if (what === "presence") {
            const presence = await api(`${channelPath(channel)}/presence`);
            log("presence", `${channel}: ${presence.clients.length} client(s) ${presence.clients.map((c) => `${c.user || "(anonymous)"}/${c.client}`).join(", ")}`);
        }
        else {
            const history = await api(`${channelPath(channel)}/history?limit=50`);
            log("history", `${channel} at ${history.epoch}:${history.offset}, ${history.messages.length} message(s)`);
            for (const message of history.messages) {
                log(`history ${channel} #${message.offset}`, JSON.stringify(message.data), "history");
            }
        }
    }
    catch (error) {
        showPlaygroundError(`${what === "presence" ? "Presence" : "History"} refused: ${error instanceof Error ? error.message : String(error)}`);
    }
});
void start();
