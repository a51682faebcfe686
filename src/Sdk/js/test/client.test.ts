import { test } from "node:test";
import assert from "node:assert/strict";
import { backoff, PushClient, reconnectPolicy, type Message, type StreamPosition, type Timers, type WebSocketLike } from "../src/push.js";

/** A clock that only moves when the test says so. */
class FakeTimers implements Timers {
  private time = 1_000_000;
  private nextHandle = 1;
  private readonly due = new Map<number, { at: number; callback: () => void }>();

  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.due.set(handle, { at: this.time + ms, callback });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }

  now(): number {
    return this.time;
  }

  /** Runs every timer due within `ms`, in order, letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    while (true) {
      await settle();
      const next = [...this.due.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) {
        break;
      }

      this.due.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
    }

    this.time = end;
    await settle();
  }

  /** The delays of the timers pending now, from now. */
  pending(): number[] {
    return [...this.due.values()].map((t) => t.at - this.time);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await Promise.resolve();
  }
}

/** A WebSocket the test plays the gateway for. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Record<string, unknown>[] = [];
  closedByClient: { code?: number; reason?: string } | undefined;

  constructor(readonly url: string, readonly protocols?: string | string[]) {
    FakeSocket.all.push(this);
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** One server frame: objects joined by '\n', as the gateway batches them. */
  frame(...objects: unknown[]): void {
    this.onmessage?.({ data: objects.map((o) => JSON.stringify(o)).join("\n") });
  }

  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** The last command sent with this op. */
  last(op: string): Record<string, unknown> {
    const command = [...this.sent].reverse().find((c) => c.op === op);
    assert.ok(command, `no '${op}' sent; sent ${JSON.stringify(this.sent)}`);
    return command;
  }

  reply(op: string, result: unknown): void {
    this.frame({ id: this.last(op).id, result });
  }
}

function setup(options: { endpoints?: string[]; token?: () => Promise<string>; random?: () => number; fetch?: typeof fetch; upgradeInterval?: number } = {}) {
  FakeSocket.all = [];
  const timers = new FakeTimers();
  const client = new PushClient({
    endpoints: options.endpoints ?? ["ws://a/ws", "ws://b/ws"],
    token: options.token,
    WebSocket: FakeSocket,
    timers,
    random: options.random ?? (() => 0.5),
    minReconnectDelay: 100,
    maxReconnectDelay: 10_000,
    // No test reaches the network: the event-stream fallback gets the test's own fetch, or one that always fails.
    fetch: options.fetch ?? (() => Promise.reject(new Error("no network in tests"))),
    upgradeInterval: options.upgradeInterval,
  });
  return { client, timers };
}

async function connected(client: PushClient, timers: FakeTimers, node = "n1"): Promise<FakeSocket> {
  void client.connect();
  await timers.advance(0);
  const socket = FakeSocket.all[FakeSocket.all.length - 1];
  socket.open();
  await timers.advance(0);
  socket.reply("connect", { client: "c1", node, pingInterval: 25 });
  await timers.advance(0);
  return socket;
}

function message(channel: string, offset: number, data: unknown = offset) {
  return { type: "message", channel, offset, data };
}

test("backoff: full jitter between the minimum and a doubling ceiling, capped at the maximum", () => {
  assert.equal(backoff(0, 100, 10_000, () => 0), 100);
  assert.equal(backoff(0, 100, 10_000, () => 0.999999), 100 + 0.999999 * 100);
  assert.equal(backoff(3, 100, 10_000, () => 1), 100 + 800);
  assert.equal(backoff(30, 100, 10_000, () => 1), 100 + 10_000);
  const spread = Array.from({ length: 1000 }, (_, i) => backoff(5, 100, 10_000, () => i / 1000));
  assert.ok(Math.min(...spread) === 100 && Math.max(...spread) > 3000, "full jitter covers the whole window");
});

test("close codes: reconnect where the contract says so, at once only after 1001", () => {
  const table: [number, boolean, boolean][] = [
    [1000, false, false],
    [1001, true, true],
    [1006, true, false],
    [4000, false, false],
    [4003, false, false],
    [4009, false, false],
    [4029, true, false],
    [4500, true, false],
    [4503, true, false],
  ];
  for (const [code, reconnect, immediately] of table) {
    assert.deepEqual(reconnectPolicy(code, true), { reconnect, immediately }, `code ${code}`);
  }

  assert.deepEqual(reconnectPolicy(4001, true), { reconnect: true, immediately: false });
  assert.deepEqual(reconnectPolicy(4001, false), { reconnect: false, immediately: false });
  // A disconnect push's flag wins, except that 4001 without a new token cannot reconnect.
  assert.equal(reconnectPolicy(4503, true, false).reconnect, false);
  assert.equal(reconnectPolicy(4001, false, true).reconnect, false);
});

test("connects with the token, subscribes, and splits batched frames", async () => {
  const { client, timers } = setup({ token: async () => "t1" });
  const received: Message[] = [];
  client.subscribe("news", { onMessage: (m) => received.push(m) });
  const socket = await connected(client, timers);
  assert.equal(socket.protocols, "push.v1.json");
  assert.equal(socket.last("connect").token, "t1");
  assert.equal(client.state, "connected");
  assert.equal(socket.last("subscribe").since, undefined);

  // The reply and the first pushes in one frame: the reply is applied before them.
  socket.frame({ id: socket.last("subscribe").id, result: { epoch: "e", offset: 4, recovered: false, messages: [] } }, message("news", 5), message("news", 6));
  socket.frame(message("news", 6), message("news", 7));
  assert.deepEqual(received.map((m) => m.offset), [5, 6, 7]);
  assert.deepEqual(received[0], { channel: "news", epoch: "e", offset: 5, data: 5 });
});

test("a gap in live offsets resubscribes with since, and missed messages come first, once", async () => {
  const { client, timers } = setup();
  const received: number[] = [];
  client.subscribe("c", { onMessage: (m) => received.push(m.offset) });
  const socket = await connected(client, timers);
  socket.reply("subscribe", { epoch: "e", offset: 0, recovered: false, messages: [] });
  socket.frame(message("c", 1), message("c", 2), message("c", 4));
  await timers.advance(0);
  socket.reply("unsubscribe", {});
  await timers.advance(0);
  assert.deepEqual(socket.last("subscribe").since, { epoch: "e", offset: 2 } satisfies StreamPosition);

  // While resubscribing, live pushes are left to the recovery; then it goes on from the reply's position.
  socket.frame(message("c", 5));
  socket.frame({ id: socket.last("subscribe").id, result: { epoch: "e", offset: 5, recovered: true, messages: [{ offset: 3, data: 3 }, { offset: 4, data: 4 }, { offset: 5, data: 5 }] } }, message("c", 5), message("c", 6));
  assert.deepEqual(received, [1, 2, 3, 4, 5, 6]);
  assert.equal(client.subscribe === undefined, false);
});

test("after a dropped connection it reconnects to the next endpoint after a backoff and resumes every channel exactly once", async () => {
  const { client, timers } = setup({ random: () => 0.5 });
  const received: number[] = [];
  client.subscribe("c", { onMessage: (m) => received.push(m.offset) });
  const first = await connected(client, timers);
  assert.equal(first.url, "ws://a/ws");
  first.reply("subscribe", { epoch: "e", offset: 0, recovered: false, messages: [] });
  first.frame(message("c", 1), message("c", 2));

  first.serverClose(1006, "gone");
  assert.equal(client.state, "disconnected");
  assert.deepEqual(timers.pending(), [100 + 0.5 * 100]);
  await timers.advance(150);
  const second = FakeSocket.all[1];
  assert.equal(second.url, "ws://b/ws");
  second.open();
  await timers.advance(0);
  second.reply("connect", { client: "c2", node: "n2", pingInterval: 25 });
  await timers.advance(0);
  assert.deepEqual(second.last("subscribe").since, { epoch: "e", offset: 2 });
  second.reply("subscribe", { epoch: "e", offset: 4, recovered: true, messages: [{ offset: 2, data: 2 }, { offset: 3, data: 3 }, { offset: 4, data: 4 }] });
  second.frame(message("c", 4), message("c", 5));
  assert.deepEqual(received, [1, 2, 3, 4, 5]);
  assert.equal(client.reconnects, 1);
  assert.equal(client.nodeId, "n2");
});

test("1001 reconnects at once; 4000 stops; 4001 stops without a token function", async () => {
  {
    const { client, timers } = setup();
    const socket = await connected(client, timers);
    socket.frame({ type: "disconnect", code: 1001, reason: "draining", reconnect: true });
    socket.serverClose(1001, "draining");
    assert.deepEqual(timers.pending(), [0]);
  }

  {
    const { client, timers } = setup();
    const socket = await connected(client, timers);
    socket.serverClose(4000, "bad_request");
    assert.equal(client.state, "closed");
    assert.deepEqual(timers.pending(), []);
    assert.equal(client.lastClose?.reconnect, false);
  }

  {
    const { client, timers } = setup();
    const socket = await connected(client, timers);
    socket.serverClose(4001, "unauthorized");
    assert.equal(client.state, "closed");
  }

  {
    const { client, timers } = setup({ token: async () => "new" });
    const socket = await connected(client, timers);
    socket.serverClose(4001, "unauthorized");
    assert.equal(client.state, "disconnected");
    assert.equal(timers.pending().length, 1);
  }
});

test("answers pings, and takes a socket that says nothing past the ping interval for dead", async () => {
  const { client, timers } = setup();
  const socket = await connected(client, timers);
  socket.frame({ type: "ping" });
  assert.deepEqual(socket.sent[socket.sent.length - 1], { op: "pong" });

  // 25 s of ping interval plus 10 s of grace: then the client closes it and reconnects, elsewhere.
  await timers.advance(34_000);
  assert.equal(client.state, "connected");
  await timers.advance(1_000);
  assert.equal(socket.closedByClient?.code, 4000);
  assert.equal(client.lastClose?.code, 4000);
  assert.equal(client.lastClose?.reconnect, true);
  await timers.advance(200);
  assert.equal(FakeSocket.all.length, 2);
  assert.equal(FakeSocket.all[1].url, "ws://b/ws");
});

test("refreshes the token before it expires, on the same connection", async () => {
  let issued = 0;
  const { client, timers } = setup({ token: async () => `t${++issued}` });
  void client.connect();
  await timers.advance(0);
  const socket = FakeSocket.all[0];
  socket.open();
  await timers.advance(0);
  const expires = Math.floor((timers.now() + 60_000) / 1000);
  socket.reply("connect", { client: "c1", node: "n1", pingInterval: 25, expires });
  await timers.advance(0);

  // A fifth of the remaining time ahead (12 s), at most 30 s; the server pings meanwhile, as it does.
  await timers.advance(24_000);
  socket.frame({ type: "ping" });
  await timers.advance(23_000);
  assert.equal(socket.sent.filter((c) => c.op === "refresh").length, 0);
  socket.frame({ type: "ping" });
  await timers.advance(2_000);
  const refresh = socket.last("refresh");
  assert.equal(refresh.token, "t2");
  socket.reply("refresh", { expires: expires + 60 });
  await timers.advance(0);
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(client.state, "connected");
});

test("a resubscribe that could not recover calls onReset and goes on from the new position", async () => {
  const { client, timers } = setup();
  const resets: StreamPosition[] = [];
  const received: number[] = [];
  const confirmed: [StreamPosition, boolean][] = [];
  client.subscribe("c", {
    since: { epoch: "old", offset: 9 },
    onMessage: (m) => received.push(m.offset),
    onReset: (p) => resets.push(p),
    onSubscribed: (p, recovered) => confirmed.push([p, recovered]),
  });
  const socket = await connected(client, timers);
  assert.deepEqual(socket.last("subscribe").since, { epoch: "old", offset: 9 });
  socket.reply("subscribe", { epoch: "new", offset: 2, recovered: false, messages: [{ offset: 1, data: 1 }, { offset: 2, data: 2 }] });
  socket.frame(message("c", 3));
  assert.deepEqual(resets, [{ epoch: "new", offset: 2 }]);
  assert.deepEqual(received, [1, 2, 3]);
  assert.deepEqual(confirmed, [[{ epoch: "new", offset: 2 }, false]]);
});

test("a subscription refused for good ends with onError; a transient refusal is retried", async () => {
  const { client, timers } = setup();
  const errors: string[] = [];
  client.subscribe("private:x", { onError: (e) => errors.push(e.code) });
  client.subscribe("busy", {});
  const socket = await connected(client, timers);
  const refused = socket.sent.find((c) => c.op === "subscribe" && c.channel === "private:x")!;
  const busy = socket.sent.find((c) => c.op === "subscribe" && c.channel === "busy")!;
  socket.frame({ id: refused.id, error: { code: "permission_denied", message: "no" } }, { id: busy.id, error: { code: "unavailable", message: "later" } });
  await timers.advance(0);
  assert.deepEqual(errors, ["permission_denied"]);
  await timers.advance(500);
  assert.equal(socket.sent.filter((c) => c.op === "subscribe" && c.channel === "busy").length, 2);
});

/** An event stream the test plays the gateway for, as fetch hands it to the client. */
class FakeStream {
  static all: FakeStream[] = [];
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly response: Response;

  constructor(readonly url: string, readonly headers: Record<string, string>, status = 200, problem?: unknown) {
    FakeStream.all.push(this);
    const body = new ReadableStream<Uint8Array>({ start: (controller) => { this.controller = controller; } });
    this.response = status === 200
      ? new Response(body, { status, headers: { "content-type": "text/event-stream", "x-pushservice-node": "n9" } })
      : new Response(JSON.stringify(problem), { status, headers: { "content-type": "application/problem+json" } });
  }

  /** Events as the gateway writes them: a data line each (ids too, which the client keeps itself), a heartbeat in between. */
  send(...pushes: unknown[]): void {
    const text = pushes.map((p) => `id: ignored\ndata: ${JSON.stringify(p)}\n\n: ping\n\n`).join("");
    this.controller.enqueue(new TextEncoder().encode(text));
  }

  end(): void {
    this.controller.close();
  }
}

function fakeFetch(status = 200, problem?: unknown): typeof fetch {
  FakeStream.all = [];
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const stream = new FakeStream(String(input), (init?.headers ?? {}) as Record<string, string>, status, problem);
    return stream.response;
  }) as typeof fetch;
}

test("where WebSockets never open, the client falls back to the event stream, resumes on it, and goes back to a WebSocket", async () => {
  const { client, timers } = setup({ endpoints: ["ws://gw/ws"], token: async () => "t1", fetch: fakeFetch(), upgradeInterval: 20_000 });
  const received: number[] = [];
  const a = client.subscribe("a", { onMessage: (m) => received.push(m.offset) });
  void client.connect();

  // Two WebSockets that never open (a proxy that breaks them), then the stream beside the endpoint.
  await timers.advance(0);
  FakeSocket.all[0].serverClose(1006);
  await timers.advance(10_000);
  FakeSocket.all[1].serverClose(1006);
  await timers.advance(10_000);
  assert.equal(client.transport, "eventstream");
  const first = FakeStream.all[0];
  assert.equal(first.url, "http://gw/sse?channel=a");
  assert.equal(first.headers.authorization, "Bearer t1");
  assert.equal(first.headers["last-event-id"], undefined);
  await timers.advance(0);
  assert.equal(client.state, "connected");
  assert.equal(client.nodeId, "n9");

  first.send({ type: "subscribed", channel: "a", epoch: "e", offset: 0, recovered: false }, message("a", 1), message("a", 2));
  await timers.advance(0);
  assert.deepEqual(received, [1, 2]);
  await assert.rejects(client.publish("a", 1), (e: Error & { code?: string }) => e.code === "unavailable");

  // The stream breaks: the next one resumes where the client stands, and what was missed comes first, once.
  first.end();
  await timers.advance(10_000);
  const second = FakeStream.all[1];
  assert.equal(second.headers["last-event-id"], "a:e:2");
  second.send({ type: "subscribed", channel: "a", epoch: "e", offset: 2, recovered: true }, message("a", 2), message("a", 3));
  await timers.advance(0);
  assert.deepEqual(received, [1, 2, 3]);
  assert.equal(a.recoveries, 1);

  // A new subscription opens a stream with both channels, resuming the first.
  client.subscribe("b", { onMessage: (m) => received.push(100 + m.offset) });
  await timers.advance(0);
  const third = FakeStream.all[2];
  assert.equal(third.url, "http://gw/sse?channel=a&channel=b");
  assert.equal(third.headers["last-event-id"], "a:e:3");
  third.send({ type: "subscribed", channel: "a", epoch: "e", offset: 3, recovered: true }, { type: "subscribed", channel: "b", epoch: "f", offset: 0, recovered: false }, message("b", 1));
  await timers.advance(0);
  assert.deepEqual(received, [1, 2, 3, 101]);

  // Now and then a WebSocket is tried again; one that opens takes over, and every channel resumes on it.
  await timers.advance(20_000);
  const probe = FakeSocket.all[FakeSocket.all.length - 1];
  probe.open();
  await timers.advance(0);
  assert.equal(client.transport, "websocket");
  const socket = FakeSocket.all[FakeSocket.all.length - 1];
  assert.notEqual(socket, probe);
  socket.open();
  await timers.advance(0);
  socket.reply("connect", { client: "c1", node: "n1", pingInterval: 25 });
  await timers.advance(0);
  assert.deepEqual(socket.sent.filter((c) => c.op === "subscribe").map((c) => c.since), [{ epoch: "e", offset: 3 }, { epoch: "f", offset: 1 }]);
});

test("an event stream refused for its token is not retried without a new one", async () => {
  const { client, timers } = setup({ endpoints: ["ws://gw/ws"], fetch: fakeFetch(401, { detail: "The connection token is not valid or has expired." }) });
  client.subscribe("a", {});
  const connecting = client.connect();
  await timers.advance(0);
  FakeSocket.all[0].serverClose(1006);
  await timers.advance(10_000);
  FakeSocket.all[1].serverClose(1006);
  await timers.advance(10_000);
  await assert.rejects(connecting, /4001/);
  assert.equal(client.state, "closed");
  assert.equal(client.lastClose?.reason, "The connection token is not valid or has expired.");
});
