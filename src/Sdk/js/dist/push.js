// PushService browser and Node client, wire contract v1 (docs/protocol.md). No runtime dependencies.
/** A command the gateway refused, with its protocol error code (`unauthorized`, `not_found`, …). */
export class PushError extends Error {
    code;
    constructor(code, message) {
        super(message);
        this.name = "PushError";
        this.code = code;
    }
}
/** What happens after a close, by code (docs/protocol.md, close codes). */
export function reconnectPolicy(code, canRefreshToken, pushed) {
    let byCode;
    switch (code) {
        case 1000:
        case 4000:
        case 4003:
        case 4009:
            byCode = false;
            break;
        case 4001:
            byCode = canRefreshToken;
            break;
        default:
            byCode = true;
    }
    // A `disconnect` push says what the server wants, except that without a new token there is no point.
    const reconnect = code === 4001 ? byCode : (pushed ?? byCode);
    return { reconnect, immediately: code === 1001 };
}
/** The wait before reconnect attempt `attempt` (0-based): full jitter up to a doubling ceiling. */
export function backoff(attempt, minMs, maxMs, random) {
    // Full jitter spreads a crowd of clients that lost the same node over the whole window.
    const ceiling = Math.min(maxMs, minMs * Math.pow(2, Math.min(attempt, 16)));
    return minMs + random() * ceiling;
}
const systemTimers = {
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle),
    now: () => Date.now(),
};
/** One channel subscription. It lives until `unsubscribe()`, through any number of reconnects. */
export class Subscription {
    channel;
    /** The epoch and last offset delivered, once known. */
    position;
    /** Times a resubscribe recovered everything missed. */
    recoveries = 0;
    /** @internal */ active = false;
    /** @internal */ removed = false;
    /** @internal */ busy = false;
    /** @internal The server may still hold this subscription: unsubscribe there before subscribing again. */ unsubscribeFirst = false;
    /** @internal */ options;
    client;
    /** @internal */
    constructor(client, channel, options) {
        this.client = client;
        this.channel = channel;
        this.options = options;
        this.position = options.since ? { ...options.since } : undefined;
    }
    /** Stops the subscription, on the server too. */
    unsubscribe() {
        return this.client.unsubscribe(this.channel);
    }
    publish(data) {
        return this.client.publish(this.channel, data);
    }
}
/**
 * A subscriber client. It connects to one of its endpoints, reconnects with exponential backoff and full jitter (at
 * once after a node drains with 1001), resubscribes every channel from its last offset so each message arrives once
 * and in order, answers pings, takes a silent socket for dead, and refreshes its token before it expires.
 */
export class PushClient {
    options;
    timers;
    random;
    factory;
    subscriptions = new Map();
    pending = new Map();
    listeners = new Map();
    socket;
    nextId = 0;
    endpointIndex = 0;
    attempt = 0;
    stopped = false;
    pushedReconnect;
    liveness;
    reconnectTimer;
    refreshTimer;
    pingIntervalMs = 25_000;
    firstConnect;
    connectedOnce = false;
    socketConnected = false;
    failedOpens = 0;
    stream;
    probeTimer;
    restartQueued = false;
    /** How the client receives now: over a WebSocket, or over its event-stream fallback (Server-Sent Events). */
    transport = "websocket";
    state = "disconnected";
    clientId;
    nodeId;
    /** Connections made after the first. */
    reconnects = 0;
    /** How the last connection ended. */
    lastClose;
    constructor(options) {
        if (!options.endpoints?.length) {
            throw new Error("PushClient needs at least one endpoint.");
        }
        this.options = { minReconnectDelay: 100, maxReconnectDelay: 10_000, commandTimeout: 10_000, pongTimeout: 10_000, ...options };
        this.timers = options.timers ?? systemTimers;
        this.random = options.random ?? Math.random;
        const factory = options.WebSocket ?? globalThis.WebSocket;
        if (!factory) {
            throw new Error("No WebSocket implementation: pass one as the WebSocket option (Node 20 has none by default).");
        }
        this.factory = factory;
        let resolve;
        let reject;
        const promise = new Promise((res, rej) => {
            resolve = res;
            reject = rej;
        });
        promise.catch(() => undefined);
        this.firstConnect = { promise, resolve, reject };
    }
    /** Subscribes to an event; returns a function that unsubscribes the listener. */
    on(event, listener) {
        let set = this.listeners.get(event);
        if (!set) {
            set = new Set();
            this.listeners.set(event, set);
        }
        set.add(listener);
        return () => set.delete(listener);
    }
    /** Starts connecting; resolves once connected the first time, rejects if the server refuses for good. */
    connect() {
        if (this.state === "disconnected" && !this.socket && !this.reconnectTimer && !this.stopped) {
            this.open();
        }
        return this.firstConnect.promise;
    }
    /** Subscribes to a channel (connecting if needed). Messages arrive through `options.onMessage`. */
    subscribe(channel, options = {}) {
        const existing = this.subscriptions.get(channel);
        if (existing) {
            throw new Error(`Already subscribed to '${channel}'.`);
        }
        const subscription = new Subscription(this, channel, options);
        this.subscriptions.set(channel, subscription);
        if (this.transport === "eventstream" && !this.stopped) {
            // A stream's channels are fixed when it opens: open one with this channel too, resuming the others.
            this.restartStream();
        }
        else if (this.state === "connected") {
            void this.ensureSubscribed(subscription, false);
        }
        else {
            void this.connect().catch(() => undefined);
        }
        return subscription;
    }
    /** Stops a subscription. */
    async unsubscribe(channel) {
        const subscription = this.subscriptions.get(channel);
        if (!subscription) {
            return;
        }
        subscription.removed = true;
        this.subscriptions.delete(channel);
        if (this.transport === "eventstream") {
            this.restartStream();
            return;
        }
        if (this.state === "connected" && subscription.active) {
            subscription.active = false;
            await this.request({ op: "unsubscribe", channel }).catch(() => undefined);
        }
    }
    /** Publishes over the WebSocket, where the namespace lets clients publish. */
    async publish(channel, data) {
        const result = await this.request({ op: "publish", channel, data });
        return { epoch: result.epoch, offset: result.offset };
    }
    /** Reads a channel's history: publications after `since` (or the newest), at most `limit`. */
    async history(channel, query = {}) {
        const result = await this.request({ op: "history", channel, ...query });
        const epoch = result.epoch;
        const messages = result.messages.map((m) => ({ channel, epoch, offset: m.offset, data: m.data }));
        return { epoch, offset: result.offset, messages };
    }
    /** Who is in a channel now, where the namespace keeps presence. */
    async presence(channel) {
        const result = await this.request({ op: "presence", channel });
        return result.clients;
    }
    /** Closes the connection for good. */
    close() {
        this.stopped = true;
        this.timers.clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        this.leaveStream();
        const socket = this.socket;
        this.detach(socket, new Error("The client was closed."));
        socket?.close(1000, "bye");
        this.setState("closed");
    }
    emit(event, value) {
        for (const listener of this.listeners.get(event) ?? []) {
            try {
                listener(value);
            }
            catch (error) {
                if (event !== "error") {
                    this.emit("error", error);
                }
            }
        }
    }
    setState(state) {
        if (this.state !== state) {
            this.state = state;
            this.emit("state", state);
        }
    }
    open() {
        this.reconnectTimer = undefined;
        if (this.stopped) {
            return;
        }
        if (this.failedOpens >= (this.options.fallbackAfter ?? 2) && this.canStream()) {
            this.openStream();
            return;
        }
        this.transport = "websocket";
        this.socketConnected = false;
        const url = this.options.endpoints[this.endpointIndex % this.options.endpoints.length];
        this.setState("connecting");
        this.pushedReconnect = undefined;
        let socket;
        try {
            socket = new this.factory(url, "push.v1.json");
        }
        catch (error) {
            this.emit("error", error);
            this.scheduleReconnect(false);
            return;
        }
        this.socket = socket;
        socket.onopen = () => void this.handshake(socket);
        socket.onmessage = (event) => this.onFrame(socket, event.data);
        socket.onclose = (event) => this.onClosed(socket, event.code, event.reason);
        socket.onerror = () => undefined;
        this.watchLiveness(socket, this.options.commandTimeout + this.options.pongTimeout);
    }
    async handshake(socket) {
        try {
            const token = await resolveToken(this.options.token);
            if (socket !== this.socket) {
                return;
            }
            const serverSide = new Set();
            const result = await this.request({ op: "connect", token: token ?? undefined, name: this.options.name, version: this.options.version }, (reply) => this.applyConnectResult(reply, serverSide));
            this.clientId = result.client;
            this.nodeId = result.node;
            if (typeof result.pingInterval === "number") {
                this.pingIntervalMs = result.pingInterval * 1000;
            }
            this.attempt = 0;
            this.failedOpens = 0;
            this.socketConnected = true;
            if (this.connectedOnce) {
                this.reconnects++;
            }
            this.connectedOnce = true;
            this.setState("connected");
            this.emit("connected", { client: this.clientId, node: this.nodeId });
            for (const subscription of this.subscriptions.values()) {
                if (!serverSide.has(subscription.channel)) {
                    subscription.active = false;
                    void this.ensureSubscribed(subscription, false);
                }
            }
            if (typeof result.expires === "number" && typeof this.options.token === "function") {
                this.scheduleRefresh(socket, result.expires);
            }
            this.firstConnect.resolve();
        }
        catch (error) {
            // The connect was refused (the server closes next) or the socket went: onClosed decides what follows.
            if (error instanceof PushError) {
                this.emit("error", error);
            }
        }
    }
    /** Channels the server subscribed at connect (the token's `channels` claim), applied before any of their pushes. */
    applyConnectResult(reply, serverSide) {
        const result = reply.result;
        const subscriptions = result?.subscriptions;
        if (!subscriptions) {
            return;
        }
        for (const [channel, position] of Object.entries(subscriptions)) {
            serverSide.add(channel);
            let subscription = this.subscriptions.get(channel);
            if (!subscription) {
                subscription = new Subscription(this, channel, {});
                this.subscriptions.set(channel, subscription);
            }
            if (!subscription.position) {
                subscription.position = { ...position };
                subscription.active = true;
            }
            else if (subscription.position.epoch === position.epoch && subscription.position.offset >= position.offset) {
                subscription.active = true;
            }
            else {
                subscription.active = false;
                void this.ensureSubscribed(subscription, true);
            }
        }
    }
    scheduleRefresh(socket, expiresSeconds) {
        this.timers.clearTimeout(this.refreshTimer);
        const remaining = expiresSeconds * 1000 - this.timers.now();
        const lead = Math.min(30_000, Math.max(1000, remaining / 5));
        this.refreshTimer = this.timers.setTimeout(() => void this.refresh(socket), Math.max(0, remaining - lead));
    }
    async refresh(socket) {
        if (socket !== this.socket) {
            return;
        }
        try {
            const token = await resolveToken(this.options.token);
            const result = await this.request({ op: "refresh", token });
            if (typeof result.expires === "number") {
                this.scheduleRefresh(socket, result.expires);
            }
        }
        catch (error) {
            // Not refreshed: the server closes with 4001 at expiry, and the client reconnects with a new token.
            this.emit("error", error);
        }
    }
    /** Subscribes (again) on this connection while it lives and the server says to try later. */
    async ensureSubscribed(subscription, unsubscribeFirst) {
        // Kept on the subscription: a gap can open while an earlier subscribe is still finishing, whose loop then does it.
        subscription.unsubscribeFirst ||= unsubscribeFirst;
        if (subscription.busy) {
            return;
        }
        subscription.busy = true;
        const socket = this.socket;
        let attempt = 0;
        try {
            while (!subscription.removed && !subscription.active && socket === this.socket && this.state === "connected") {
                try {
                    if (subscription.unsubscribeFirst) {
                        await this.request({ op: "unsubscribe", channel: subscription.channel });
                        subscription.unsubscribeFirst = false;
                    }
                    await this.subscribeOnServer(subscription);
                }
                catch (error) {
                    if (!(error instanceof PushError)) {
                        return;
                    }
                    if (["unavailable", "internal", "rate_limited", "already_subscribed"].includes(error.code)) {
                        subscription.unsubscribeFirst ||= error.code === "already_subscribed";
                        await this.delay(backoff(attempt++, this.options.minReconnectDelay, this.options.maxReconnectDelay, this.random));
                    }
                    else {
                        subscription.removed = true;
                        this.subscriptions.delete(subscription.channel);
                        subscription.options.onError?.(error);
                    }
                }
            }
        }
        finally {
            subscription.busy = false;
        }
    }
    async subscribeOnServer(subscription) {
        const had = subscription.position ? { ...subscription.position } : undefined;
        const token = await resolveToken(subscription.options.token);
        const command = { op: "subscribe", channel: subscription.channel };
        if (had) {
            command.since = had;
        }
        if (token) {
            command.token = token;
        }
        // Applied where the reply is read, before any push after it, so live messages continue exactly after it.
        await this.request(command, (reply) => this.applySubscribeResult(subscription, reply, had));
    }
    applySubscribeResult(subscription, reply, had) {
        const result = reply.result;
        if (!result || subscription.removed) {
            return;
        }
        const sameEpoch = had !== undefined && had.epoch === result.epoch;
        if (had) {
            if (result.recovered) {
                subscription.recoveries++;
            }
            else {
                this.safely(() => subscription.options.onReset?.({ epoch: result.epoch, offset: result.offset }));
            }
        }
        let last = had?.offset ?? 0;
        for (const message of result.messages ?? []) {
            if (sameEpoch && message.offset <= last) {
                continue;
            }
            last = message.offset;
            this.deliver(subscription, { channel: subscription.channel, epoch: result.epoch, offset: message.offset, data: message.data });
        }
        subscription.position = { epoch: result.epoch, offset: result.offset };
        subscription.active = true;
        this.safely(() => subscription.options.onSubscribed?.({ epoch: result.epoch, offset: result.offset }, result.recovered === true));
    }
    deliver(subscription, message) {
        this.safely(() => subscription.options.onMessage?.(message));
    }
    safely(action) {
        try {
            action();
        }
        catch (error) {
            this.emit("error", error);
        }
    }
    request(command, apply) {
        if (this.transport === "eventstream") {
            return Promise.reject(new PushError("unavailable", "The client is on its event-stream fallback (WebSockets do not get through): it receives, but sends no commands."));
        }
        const socket = this.socket;
        if (!socket || socket.readyState !== 1) {
            return Promise.reject(new Error("Not connected."));
        }
        const id = ++this.nextId;
        return new Promise((resolve, reject) => {
            const timer = this.timers.setTimeout(() => {
                this.pending.delete(id);
                reject(new Error(`No reply to '${String(command.op)}' within ${this.options.commandTimeout} ms.`));
            }, this.options.commandTimeout);
            this.pending.set(id, {
                resolve: (reply) => {
                    const error = reply.error;
                    if (error) {
                        reject(new PushError(error.code, error.message));
                    }
                    else {
                        resolve((reply.result ?? {}));
                    }
                },
                reject,
                apply,
                timer,
            });
            socket.send(JSON.stringify({ ...command, id }));
        });
    }
    onFrame(socket, data) {
        if (socket !== this.socket) {
            return;
        }
        this.watchLiveness(socket, this.pingIntervalMs + this.options.pongTimeout);
        // A server frame holds one or more JSON objects separated by '\n'.
        for (const line of String(data).split("\n")) {
            if (line.length === 0) {
                continue;
            }
            let element;
            try {
                element = JSON.parse(line);
            }
            catch {
                this.emit("error", new Error(`Unreadable frame from the gateway: ${line.slice(0, 100)}`));
                continue;
            }
            this.handle(socket, element);
        }
    }
    handle(socket, element) {
        if (typeof element.id === "number") {
            const pending = this.pending.get(element.id);
            if (pending) {
                this.pending.delete(element.id);
                this.timers.clearTimeout(pending.timer);
                pending.apply?.(element);
                pending.resolve(element);
            }
            return;
        }
        const channel = element.channel;
        const subscription = channel === undefined ? undefined : this.subscriptions.get(channel);
        switch (element.type) {
            case "message":
                if (subscription) {
                    this.onMessage(subscription, element.offset, element.data);
                }
                break;
            case "join":
                this.safely(() => subscription?.options.onJoin?.({ client: element.client, user: element.user }));
                break;
            case "leave":
                this.safely(() => subscription?.options.onLeave?.({ client: element.client, user: element.user }));
                break;
            case "unsubscribed":
                if (subscription) {
                    subscription.active = false;
                    void this.ensureSubscribed(subscription, false);
                }
                break;
            case "ping":
                socket.send('{"op":"pong"}');
                break;
            case "disconnect":
                this.pushedReconnect = element.reconnect;
                break;
        }
    }
    onMessage(subscription, offset, data) {
        const position = subscription.position;
        if (!subscription.active || !position || offset <= position.offset) {
            return;
        }
        if (offset === position.offset + 1) {
            subscription.position = { epoch: position.epoch, offset };
            this.deliver(subscription, { channel: subscription.channel, epoch: position.epoch, offset, data });
            return;
        }
        // A gap: subscribe again from the last offset seen; the gateway sends what is missing first.
        subscription.active = false;
        if (this.transport === "eventstream") {
            this.restartStream();
        }
        else {
            void this.ensureSubscribed(subscription, true);
        }
    }
    /** A socket that says nothing for this long is dead (a half-open TCP connection never closes by itself). */
    watchLiveness(socket, ms) {
        this.timers.clearTimeout(this.liveness);
        this.liveness = this.timers.setTimeout(() => {
            if (socket === this.socket) {
                this.onClosed(socket, 4000, "no frame from the gateway in time", true);
                try {
                    socket.close(4000, "silent");
                }
                catch {
                    // Closing a socket that is going anyway.
                }
            }
        }, ms);
    }
    onClosed(socket, code, reason, local = false) {
        if (socket !== this.socket) {
            return;
        }
        const pushed = this.pushedReconnect;
        if (!this.socketConnected && (local || code === 1002 || code === 1005 || code === 1006 || code === 1015)) {
            // Never got as far as the gateway's connect reply, and not for anything the gateway said: the network or a proxy
            // in the way. After a few such attempts the event stream is tried instead.
            this.failedOpens++;
        }
        this.detach(socket, new Error("The connection closed before the reply."));
        if (this.stopped) {
            return;
        }
        // A socket the client gave up on itself is reconnected, whatever code it was closed with.
        const policy = local ? { reconnect: true, immediately: false } : reconnectPolicy(code, typeof this.options.token === "function", pushed);
        const info = { code, reason, reconnect: policy.reconnect };
        this.lastClose = info;
        this.setState("disconnected");
        this.emit("disconnected", info);
        if (!policy.reconnect) {
            this.stopped = true;
            this.setState("closed");
            this.firstConnect.reject(new PushError("closed", `The gateway closed the connection with ${code} (${reason}).`));
            return;
        }
        this.scheduleReconnect(policy.immediately);
    }
    scheduleReconnect(immediately) {
        // The next endpoint: a node that went away is likely to stay away for a while.
        this.endpointIndex++;
        const wait = immediately ? 0 : backoff(this.attempt++, this.options.minReconnectDelay, this.options.maxReconnectDelay, this.random);
        this.reconnectTimer = this.timers.setTimeout(() => this.open(), wait);
    }
    detach(socket, error) {
        if (!socket || socket !== this.socket) {
            return;
        }
        this.socket = undefined;
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        this.timers.clearTimeout(this.liveness);
        this.timers.clearTimeout(this.refreshTimer);
        this.clientId = undefined;
        for (const pending of this.pending.values()) {
            this.timers.clearTimeout(pending.timer);
            pending.reject(error);
        }
        this.pending.clear();
        for (const subscription of this.subscriptions.values()) {
            subscription.active = false;
            subscription.unsubscribeFirst = false;
        }
    }
    // -------------------------------------------------------------------------------------------------------------------
    // The event-stream fallback (docs/protocol.md, "Server-Sent Events"): read with fetch, so the token goes in a header
    // (never in an address) and a refusal's status is seen; resumed on any node from every channel's position.
    canStream() {
        return this.options.eventStream !== false && typeof (this.options.fetch ?? globalThis.fetch) === "function";
    }
    streamUrl(channels) {
        const streams = Array.isArray(this.options.eventStream) ? this.options.eventStream : undefined;
        let url;
        if (streams?.length) {
            url = new URL(streams[this.endpointIndex % streams.length]);
        }
        else {
            url = new URL(this.options.endpoints[this.endpointIndex % this.options.endpoints.length]);
            url.protocol = url.protocol === "wss:" ? "https:" : "http:";
            url.pathname = url.pathname.replace(/\/ws\/?$/, "") + "/sse";
        }
        url.search = "";
        for (const channel of channels) {
            url.searchParams.append("channel", channel);
        }
        return url.toString();
    }
    openStream() {
        this.reconnectTimer = undefined;
        if (this.stopped) {
            return;
        }
        this.transport = "eventstream";
        this.setState("connecting");
        const channels = [...this.subscriptions.values()].filter((s) => !s.removed);
        const run = { controller: new AbortController(), code: 1006, reason: "the event stream ended", pushed: undefined };
        this.stream = run;
        this.scheduleProbe();
        if (channels.length === 0) {
            // Nothing to follow yet: the stream opens with the first subscribe.
            this.onStreamConnected(undefined);
            return;
        }
        // Where the client stands in each channel, in the stream's own id format: the gateway resumes every one there.
        const lastEventId = channels.filter((s) => s.position).map((s) => `${s.channel}:${s.position.epoch}:${s.position.offset}`).join(";");
        void this.runStream(run, this.streamUrl(channels.map((s) => s.channel)), lastEventId);
    }
    async runStream(run, url, lastEventId) {
        const fetcher = this.options.fetch ?? globalThis.fetch;
        try {
            const token = await resolveToken(this.options.token);
            const headers = { accept: "text/event-stream" };
            if (token) {
                headers.authorization = `Bearer ${token}`;
            }
            if (lastEventId) {
                headers["last-event-id"] = lastEventId;
            }
            const response = await fetcher(url, { headers, signal: run.controller.signal, cache: "no-store" });
            if (run !== this.stream) {
                return;
            }
            if (!response.ok || !response.body) {
                // Refused before the stream started: the status stands for the close code a WebSocket would have got.
                run.code = response.status === 401 ? 4001 : response.status === 403 ? 4003 : response.status === 400 || response.status === 404 ? 4000 : 4503;
                run.reason = await problemDetail(response);
                return;
            }
            this.onStreamConnected(response.headers.get("x-pushservice-node") ?? undefined);
            const reader = response.body.getReader();
            const decoder = new TextDecoder();
            let buffer = "";
            let data = [];
            this.watchStream(run);
            for (;;) {
                const { done, value } = await reader.read();
                if (done || run !== this.stream) {
                    return;
                }
                this.watchStream(run);
                buffer += decoder.decode(value, { stream: true });
                let newline;
                while ((newline = buffer.indexOf("\n")) >= 0) {
                    const line = buffer.slice(0, newline).replace(/\r$/, "");
                    buffer = buffer.slice(newline + 1);
                    if (line === "") {
                        if (data.length > 0) {
                            this.onStreamEvent(run, data.join("\n"));
                            data = [];
                        }
                    }
                    else if (line.startsWith("data:")) {
                        data.push(line.slice(line[5] === " " ? 6 : 5));
                    }
                    // Comments (the heartbeat), ids and retry: the client keeps positions itself and decides its own waits.
                    if (run !== this.stream) {
                        return;
                    }
                }
            }
        }
        catch (error) {
            if (run === this.stream && !run.controller.signal.aborted) {
                run.reason = error instanceof Error ? error.message : String(error);
            }
        }
        finally {
            if (run === this.stream) {
                this.onStreamClosed(run);
            }
        }
    }
    onStreamConnected(node) {
        this.nodeId = node;
        this.clientId = undefined;
        this.attempt = 0;
        if (this.connectedOnce) {
            this.reconnects++;
        }
        this.connectedOnce = true;
        this.setState("connected");
        this.emit("connected", { client: "", node: node ?? "" });
        this.firstConnect.resolve();
    }
    onStreamEvent(run, json) {
        let push;
        try {
            push = JSON.parse(json);
        }
        catch {
            this.emit("error", new Error(`Unreadable event from the gateway: ${json.slice(0, 100)}`));
            return;
        }
        const channel = push.channel;
        const subscription = channel === undefined ? undefined : this.subscriptions.get(channel);
        switch (push.type) {
            case "subscribed":
                if (subscription) {
                    const position = { epoch: push.epoch, offset: push.offset };
                    if (subscription.position && push.recovered === true) {
                        subscription.recoveries++;
                    }
                    subscription.position = position;
                    subscription.active = true;
                    this.safely(() => subscription.options.onSubscribed?.(position, push.recovered === true));
                }
                break;
            case "reset":
                if (subscription) {
                    const position = { epoch: push.epoch, offset: push.offset };
                    subscription.position = position;
                    this.safely(() => subscription.options.onReset?.(position));
                }
                break;
            case "message":
                if (subscription) {
                    this.onMessage(subscription, push.offset, push.data);
                }
                break;
            case "join":
                this.safely(() => subscription?.options.onJoin?.({ client: push.client, user: push.user }));
                break;
            case "leave":
                this.safely(() => subscription?.options.onLeave?.({ client: push.client, user: push.user }));
                break;
            case "disconnect":
                run.code = push.code;
                run.reason = push.reason;
                run.pushed = push.reconnect;
                break;
        }
    }
    onStreamClosed(run) {
        this.stream = undefined;
        this.timers.clearTimeout(this.liveness);
        for (const subscription of this.subscriptions.values()) {
            subscription.active = false;
        }
        if (this.stopped) {
            return;
        }
        const policy = reconnectPolicy(run.code, typeof this.options.token === "function", run.pushed);
        const info = { code: run.code, reason: run.reason, reconnect: policy.reconnect };
        this.lastClose = info;
        this.setState("disconnected");
        this.emit("disconnected", info);
        if (!policy.reconnect) {
            this.stopped = true;
            this.leaveStream();
            this.setState("closed");
            this.firstConnect.reject(new PushError("closed", `The gateway ended the event stream with ${run.code} (${run.reason}).`));
            return;
        }
        this.scheduleReconnect(policy.immediately);
    }
    /** Opens the stream again at once (its channels changed, or a gap showed), resuming every channel. */
    restartStream() {
        if (this.restartQueued) {
            return;
        }
        // Several subscribes in a row open one stream, not one each.
        this.restartQueued = true;
        queueMicrotask(() => {
            this.restartQueued = false;
            if (this.transport !== "eventstream" || this.stopped) {
                return;
            }
            const run = this.stream;
            this.stream = undefined;
            run?.controller.abort();
            this.timers.clearTimeout(this.reconnectTimer);
            this.openStream();
        });
    }
    /** A stream that says nothing for this long (the heartbeat comes every ping interval) is dead. */
    watchStream(run) {
        this.timers.clearTimeout(this.liveness);
        this.liveness = this.timers.setTimeout(() => {
            if (run === this.stream) {
                run.reason = "no event from the gateway in time";
                run.code = 1006;
                run.controller.abort();
                this.onStreamClosed(run);
            }
        }, this.pingIntervalMs + this.options.pongTimeout);
    }
    /** While on the stream, tries a WebSocket now and then; one that opens takes over, resuming every channel. */
    scheduleProbe() {
        this.timers.clearTimeout(this.probeTimer);
        this.probeTimer = this.timers.setTimeout(() => {
            if (this.transport !== "eventstream" || this.stopped) {
                return;
            }
            const url = this.options.endpoints[this.endpointIndex % this.options.endpoints.length];
            let probe;
            try {
                probe = new this.factory(url, "push.v1.json");
            }
            catch {
                this.scheduleProbe();
                return;
            }
            probe.onopen = () => {
                probe.onclose = probe.onerror = null;
                probe.close(1000, "probe");
                if (this.transport === "eventstream" && !this.stopped) {
                    this.failedOpens = 0;
                    this.leaveStream();
                    this.timers.clearTimeout(this.reconnectTimer);
                    this.open();
                }
            };
            probe.onclose = () => this.scheduleProbe();
            probe.onerror = () => undefined;
        }, this.options.upgradeInterval ?? 30_000);
    }
    /** Stops the event stream, if any, keeping every channel's position for whatever comes next. */
    leaveStream() {
        this.timers.clearTimeout(this.probeTimer);
        const run = this.stream;
        this.stream = undefined;
        run?.controller.abort();
        if (run) {
            this.timers.clearTimeout(this.liveness);
        }
        this.transport = "websocket";
    }
    delay(ms) {
        return new Promise((resolve) => this.timers.setTimeout(resolve, ms));
    }
}
/** The detail of a problem-details refusal, or the status line. */
async function problemDetail(response) {
    try {
        const problem = (await response.json());
        return problem.detail ?? problem.title ?? `${response.status}`;
    }
    catch {
        return `${response.status} ${response.statusText}`;
    }
}
async function resolveToken(source) {
    return typeof source === "function" ? await source() : source;
}
