// PushService browser and Node client, wire contract v1 (docs/protocol.md). No runtime dependencies.

/** Where a channel's stream stands: its epoch and the last offset seen in it. */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/** One publication delivered to a subscription, exactly once and in offset order. */
export interface Message {
  channel: string;
  epoch: string;
  offset: number;
  /** The published JSON value. */
  data: unknown;
}

/** A client in a channel's presence, or the subject of a join or leave. */
export interface PresenceClient {
  client: string;
  user: string;
}

/** A command the gateway refused, with its protocol error code (`unauthorized`, `not_found`, …). */
export class PushError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "PushError";
    this.code = code;
  }
}

export type ConnectionState = "disconnected" | "connecting" | "connected" | "closed";

/** How a WebSocket connection ended: its close code and reason, and whether the client goes on to reconnect. */
export interface CloseInfo {
  code: number;
  reason: string;
  reconnect: boolean;
}

type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

/** The parts of the WebSocket API the client uses: the browser's, Node's global one, or any compatible one. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketFactory = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Timers the client schedules with; tests pass fake ones. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export interface PushClientOptions {
  /** Gateway WebSocket addresses (`wss://push.example.com/ws`); the client moves to the next one after each failure. */
  endpoints: string[];
  /** The connection token, or a function that fetches a fresh one (called at each connect and before it expires). */
  token?: TokenSource;
  name?: string;
  version?: string;
  /** First reconnect delay, in ms. Default 100. */
  minReconnectDelay?: number;
  /** Longest reconnect delay, in ms. Default 10000. */
  maxReconnectDelay?: number;
  /** How long a command waits for its reply, in ms. Default 10000. */
  commandTimeout?: number;
  /** How long past the server's ping interval the client waits for any frame before it takes the socket for dead, in ms. Default 10000. */
  pongTimeout?: number;
  /** The WebSocket implementation. Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketFactory;
  /**
   * Fall back to Server-Sent Events where WebSockets do not get through (a proxy that breaks them): `true` (the default)
   * streams from `/sse` beside each WebSocket endpoint, a list names the stream addresses, `false` never falls back.
   * On the stream the client receives everything as before (with recovery on any node), but sends no commands: publish,
   * history and presence are refused until it is back on a WebSocket, which it tries again every `upgradeInterval`.
   */
  eventStream?: boolean | string[];
  /** WebSocket attempts in a row that never opened before the client falls back to the event stream. Default 2. */
  fallbackAfter?: number;
  /** How often the client on the event stream tries a WebSocket again, in ms. Default 30000. */
  upgradeInterval?: number;
  /** The fetch implementation the event stream uses. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** @internal Timers, for tests. */
  timers?: Timers;
  /** @internal Randomness in [0, 1), for tests. */
  random?: () => number;
}

export interface SubscribeOptions {
  /** Each publication, exactly once, in offset order, across reconnects to any node. */
  onMessage?: (message: Message) => void;
  /**
   * History no longer holds what was missed (a new epoch, or a gap older than the history kept): the application must
   * re-sync its state by other means. Delivery goes on from the channel's current position.
   */
  onReset?: (position: StreamPosition) => void;
  onJoin?: (client: PresenceClient) => void;
  onLeave?: (client: PresenceClient) => void;
  /** The subscription was refused for good (for example `permission_denied`); it has ended. */
  onError?: (error: PushError) => void;
  /**
   * The server confirmed the subscription (the first time, and again after each reconnect or gap), after delivering
   * what it recovered: everything published after `position` will arrive.
   */
  onSubscribed?: (position: StreamPosition, recovered: boolean) => void;
  /** Start after this position instead of now: what was published since comes first. */
  since?: StreamPosition;
  /** A subscription token, or a function that fetches one, where the namespace asks for one. */
  token?: TokenSource;
}

export interface ClientEvents {
  state: ConnectionState;
  connected: { client: string; node: string };
  disconnected: CloseInfo;
  error: Error;
}

/** What happens after a close, by code (docs/protocol.md, close codes). */
export function reconnectPolicy(code: number, canRefreshToken: boolean, pushed?: boolean): { reconnect: boolean; immediately: boolean } {
  let byCode: boolean;
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
export function backoff(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  // Full jitter spreads a crowd of clients that lost the same node over the whole window.
  const ceiling = Math.min(maxMs, minMs * Math.pow(2, Math.min(attempt, 16)));
  return minMs + random() * ceiling;
}

const systemTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

interface Pending {
  resolve(reply: Record<string, unknown>): void;
  reject(error: Error): void;
  apply?: (reply: Record<string, unknown>) => void;
  timer: unknown;
}

/** One channel subscription. It lives until `unsubscribe()`, through any number of reconnects. */
export class Subscription {
  readonly channel: string;
  /** The epoch and last offset delivered, once known. */
  position: StreamPosition | undefined;
  /** Times a resubscribe recovered everything missed. */
  recoveries = 0;
  /** @internal */ active = false;
  /** @internal */ removed = false;
  /** @internal */ busy = false;
  /** @internal The server may still hold this subscription: unsubscribe there before subscribing again. */ unsubscribeFirst = false;
  /** @internal */ readonly options: SubscribeOptions;
  private readonly client: PushClient;

  /** @internal */
  constructor(client: PushClient, channel: string, options: SubscribeOptions) {
    this.client = client;
    this.channel = channel;
    this.options = options;
    this.position = options.since ? { ...options.since } : undefined;
  }

  /** Stops the subscription, on the server too. */
  unsubscribe(): Promise<void> {
    return this.client.unsubscribe(this.channel);
  }

  publish(data: unknown): Promise<StreamPosition> {
    return this.client.publish(this.channel, data);
  }
}

/**
 * A subscriber client. It connects to one of its endpoints, reconnects with exponential backoff and full jitter (at
 * once after a node drains with 1001), resubscribes every channel from its last offset so each message arrives once
 * and in order, answers pings, takes a silent socket for dead, and refreshes its token before it expires.
 */
export class PushClient {
  private readonly options: Required<Pick<PushClientOptions, "minReconnectDelay" | "maxReconnectDelay" | "commandTimeout" | "pongTimeout">> & PushClientOptions;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly factory: WebSocketFactory;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<keyof ClientEvents, Set<(value: never) => void>>();
  private socket: WebSocketLike | undefined;
  private nextId = 0;
  private endpointIndex = 0;
  private attempt = 0;
  private stopped = false;
  private pushedReconnect: boolean | undefined;
  private liveness: unknown;
  private reconnectTimer: unknown;
  private refreshTimer: unknown;
  private pingIntervalMs = 25_000;
  private firstConnect: { promise: Promise<void>; resolve(): void; reject(error: Error): void };
  private connectedOnce = false;
  private socketConnected = false;
  private failedOpens = 0;
  private stream: EventStreamRun | undefined;
  private probeTimer: unknown;
  private restartQueued = false;

  /** How the client receives now: over a WebSocket, or over its event-stream fallback (Server-Sent Events). */
  transport: "websocket" | "eventstream" = "websocket";

  state: ConnectionState = "disconnected";
  clientId: string | undefined;
  nodeId: string | undefined;
  /** Connections made after the first. */
  reconnects = 0;
  /** How the last connection ended. */
  lastClose: CloseInfo | undefined;

  constructor(options: PushClientOptions) {
    if (!options.endpoints?.length) {
      throw new Error("PushClient needs at least one endpoint.");
    }

    this.options = { minReconnectDelay: 100, maxReconnectDelay: 10_000, commandTimeout: 10_000, pongTimeout: 10_000, ...options };
    this.timers = options.timers ?? systemTimers;
    this.random = options.random ?? Math.random;
    const factory = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
    if (!factory) {
      throw new Error("No WebSocket implementation: pass one as the WebSocket option (Node 20 has none by default).");
    }

    this.factory = factory;
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined);
    this.firstConnect = { promise, resolve, reject };
  }

  /** Subscribes to an event; returns a function that unsubscribes the listener. */
  on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }

    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  /** Starts connecting; resolves once connected the first time, rejects if the server refuses for good. */
  connect(): Promise<void> {
    if (this.state === "disconnected" && !this.socket && !this.reconnectTimer && !this.stopped) {
      this.open();
    }

    return this.firstConnect.promise;
  }

  /** Subscribes to a channel (connecting if needed). Messages arrive through `options.onMessage`. */
  subscribe(channel: string, options: SubscribeOptions = {}): Subscription {
    const existing = this.subscriptions.get(channel);
    if (existing) {
      throw new Error(`Already subscribed to '${channel}'.`);
    }

    const subscription = new Subscription(this, channel, options);
    this.subscriptions.set(channel, subscription);
    if (this.transport === "eventstream" && !this.stopped) {
      // A stream's channels are fixed when it opens: open one with this channel too, resuming the others.
      this.restartStream();
    } else if (this.state === "connected") {
      void this.ensureSubscribed(subscription, false);
    } else {
      void this.connect().catch(() => undefined);
    }

    return subscription;
  }

  /** Stops a subscription. */
  async unsubscribe(channel: string): Promise<void> {
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
  async publish(channel: string, data: unknown): Promise<StreamPosition> {
    const result = await this.request({ op: "publish", channel, data });
    return { epoch: result.epoch as string, offset: result.offset as number };
  }

  /** Reads a channel's history: publications after `since` (or the newest), at most `limit`. */
  async history(channel: string, query: { since?: StreamPosition; limit?: number } = {}): Promise<{ epoch: string; offset: number; messages: Message[] }> {
    const result = await this.request({ op: "history", channel, ...query });
    const epoch = result.epoch as string;
    const messages = (result.messages as { offset: number; data: unknown }[]).map((m) => ({ channel, epoch, offset: m.offset, data: m.data }));
    return { epoch, offset: result.offset as number, messages };
  }

  /** Who is in a channel now, where the namespace keeps presence. */
  async presence(channel: string): Promise<PresenceClient[]> {
    const result = await this.request({ op: "presence", channel });
    return result.clients as PresenceClient[];
  }

  /** Closes the connection for good. */
  close(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.leaveStream();
    const socket = this.socket;
    this.detach(socket, new Error("The client was closed."));
    socket?.close(1000, "bye");
    this.setState("closed");
  }

  private emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as (value: ClientEvents[K]) => void)(value);
      } catch (error) {
        if (event !== "error") {
          this.emit("error", error as Error);
        }
      }
    }
  }

  private setState(state: ConnectionState): void {
    if (this.state !== state) {
      this.state = state;
      this.emit("state", state);
    }
  }

  private open(): void {
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
    let socket: WebSocketLike;
    try {
      socket = new this.factory(url, "push.v1.json");
    } catch (error) {
      this.emit("error", error as Error);
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

  private async handshake(socket: WebSocketLike): Promise<void> {
    try {
      const token = await resolveToken(this.options.token);
      if (socket !== this.socket) {
        return;
      }

      const serverSide = new Set<string>();
      const result = await this.request(
        { op: "connect", token: token ?? undefined, name: this.options.name, version: this.options.version },
        (reply) => this.applyConnectResult(reply, serverSide),
      );
      this.clientId = result.client as string;
      this.nodeId = result.node as string;
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
    } catch (error) {
      // The connect was refused (the server closes next) or the socket went: onClosed decides what follows.
      if (error instanceof PushError) {
        this.emit("error", error);
      }
    }
  }

  /** Channels the server subscribed at connect (the token's `channels` claim), applied before any of their pushes. */
  private applyConnectResult(reply: Record<string, unknown>, serverSide: Set<string>): void {
    const result = reply.result as Record<string, unknown> | undefined;
    const subscriptions = result?.subscriptions as Record<string, StreamPosition> | undefined;
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
      } else if (subscription.position.epoch === position.epoch && subscription.position.offset >= position.offset) {
        subscription.active = true;
      } else {
        subscription.active = false;
        void this.ensureSubscribed(subscription, true);
      }
    }
  }

  private scheduleRefresh(socket: WebSocketLike, expiresSeconds: number): void {
    this.timers.clearTimeout(this.refreshTimer);
    const remaining = expiresSeconds * 1000 - this.timers.now();
    const lead = Math.min(30_000, Math.max(1000, remaining / 5));
    this.refreshTimer = this.timers.setTimeout(() => void this.refresh(socket), Math.max(0, remaining - lead));
  }

  private async refresh(socket: WebSocketLike): Promise<void> {
    if (socket !== this.socket) {
      return;
    }

    try {
      const token = await resolveToken(this.options.token);
      const result = await this.request({ op: "refresh", token });
      if (typeof result.expires === "number") {
        this.scheduleRefresh(socket, result.expires);
      }
    } catch (error) {
      // Not refreshed: the server closes with 4001 at expiry, and the client reconnects with a new token.
      this.emit("error", error as Error);
    }
  }

  /** Subscribes (again) on this connection while it lives and the server says to try later. */
  private async ensureSubscribed(subscription: Subscription, unsubscribeFirst: boolean): Promise<void> {
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
        } catch (error) {
          if (!(error instanceof PushError)) {
            return;
          }

          if (["unavailable", "internal", "rate_limited", "already_subscribed"].includes(error.code)) {
            subscription.unsubscribeFirst ||= error.code === "already_subscribed";
            await this.delay(backoff(attempt++, this.options.minReconnectDelay, this.options.maxReconnectDelay, this.random));
          } else {
            subscription.removed = true;
            this.subscriptions.delete(subscription.channel);
            subscription.options.onError?.(error);
          }
        }
      }
    } finally {
      subscription.busy = false;
    }
  }

  private async subscribeOnServer(subscription: Subscription): Promise<void> {
    const had = subscription.position ? { ...subscription.position } : undefined;
    const token = await resolveToken(subscription.options.token);
    const command: Record<string, unknown> = { op: "subscribe", channel: subscription.channel };
    if (had) {
      command.since = had;
    }

    if (token) {
      command.token = token;
    }

    // Applied where the reply is read, before any push after it, so live messages continue exactly after it.
    await this.request(command, (reply) => this.applySubscribeResult(subscription, reply, had));
  }

  private applySubscribeResult(subscription: Subscription, reply: Record<string, unknown>, had: StreamPosition | undefined): void {
    const result = reply.result as { epoch: string; offset: number; recovered?: boolean; messages: { offset: number; data: unknown }[] } | undefined;
    if (!result || subscription.removed) {
      return;
    }

    const sameEpoch = had !== undefined && had.epoch === result.epoch;
    if (had) {
      if (result.recovered) {
        subscription.recoveries++;
      } else {
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

  private deliver(subscription: Subscription, message: Message): void {
    this.safely(() => subscription.options.onMessage?.(message));
  }

  private safely(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.emit("error", error as Error);
    }
  }

  private request(command: Record<string, unknown>, apply?: (reply: Record<string, unknown>) => void): Promise<Record<string, unknown>> {
    if (this.transport === "eventstream") {
      return Promise.reject(new PushError("unavailable",
        "The client is on its event-stream fallback (WebSockets do not get through): it receives, but sends no commands."));
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
          const error = reply.error as { code: string; message: string } | undefined;
          if (error) {
            reject(new PushError(error.code, error.message));
          } else {
            resolve((reply.result ?? {}) as Record<string, unknown>);
          }
        },
        reject,
        apply,
        timer,
      });
      socket.send(JSON.stringify({ ...command, id }));
    });
  }

  private onFrame(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.socket) {
      return;
    }

    this.watchLiveness(socket, this.pingIntervalMs + this.options.pongTimeout);

    // A server frame holds one or more JSON objects separated by '\n'.
    for (const line of String(data).split("\n")) {
      if (line.length === 0) {
        continue;
      }

      let element: Record<string, unknown>;
      try {
        element = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.emit("error", new Error(`Unreadable frame from the gateway: ${line.slice(0, 100)}`));
        continue;
      }

      this.handle(socket, element);
    }
  }

  private handle(socket: WebSocketLike, element: Record<string, unknown>): void {
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

    const channel = element.channel as string;
    const subscription = channel === undefined ? undefined : this.subscriptions.get(channel);
    switch (element.type) {
      case "message":
        if (subscription) {
          this.onMessage(subscription, element.offset as number, element.data);
        }

        break;
      case "join":
        this.safely(() => subscription?.options.onJoin?.({ client: element.client as string, user: element.user as string }));
        break;
      case "leave":
        this.safely(() => subscription?.options.onLeave?.({ client: element.client as string, user: element.user as string }));
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
        this.pushedReconnect = element.reconnect as boolean;
        break;
    }
  }

  private onMessage(subscription: Subscription, offset: number, data: unknown): void {
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
    } else {
      void this.ensureSubscribed(subscription, true);
    }
  }

  /** A socket that says nothing for this long is dead (a half-open TCP connection never closes by itself). */
  private watchLiveness(socket: WebSocketLike, ms: number): void {
    this.timers.clearTimeout(this.liveness);
    this.liveness = this.timers.setTimeout(() => {
      if (socket === this.socket) {
        this.onClosed(socket, 4000, "no frame from the gateway in time", true);
        try {
          socket.close(4000, "silent");
        } catch {
          // Closing a socket that is going anyway.
        }
      }
    }, ms);
  }

  private onClosed(socket: WebSocketLike, code: number, reason: string, local = false): void {
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
    const info: CloseInfo = { code, reason, reconnect: policy.reconnect };
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

  private scheduleReconnect(immediately: boolean): void {
    // The next endpoint: a node that went away is likely to stay away for a while.
    this.endpointIndex++;
    const wait = immediately ? 0 : backoff(this.attempt++, this.options.minReconnectDelay, this.options.maxReconnectDelay, this.random);
    this.reconnectTimer = this.timers.setTimeout(() => this.open(), wait);
  }

  private detach(socket: WebSocketLike | undefined, error: Error): void {
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

  private canStream(): boolean {
    return this.options.eventStream !== false && typeof (this.options.fetch ?? globalThis.fetch) === "function";
  }

  private streamUrl(channels: string[]): string {
    const streams = Array.isArray(this.options.eventStream) ? this.options.eventStream : undefined;
    let url: URL;
    if (streams?.length) {
      url = new URL(streams[this.endpointIndex % streams.length]!);
    } else {
      url = new URL(this.options.endpoints[this.endpointIndex % this.options.endpoints.length]!);
      url.protocol = url.protocol === "wss:" ? "https:" : "http:";
      url.pathname = url.pathname.replace(/\/ws\/?$/, "") + "/sse";
    }

    url.search = "";
    for (const channel of channels) {
      url.searchParams.append("channel", channel);
    }

    return url.toString();
  }

  private openStream(): void {
    this.reconnectTimer = undefined;
    if (this.stopped) {
      return;
    }

    this.transport = "eventstream";
    this.setState("connecting");
    const channels = [...this.subscriptions.values()].filter((s) => !s.removed);
    const run: EventStreamRun = { controller: new AbortController(), code: 1006, reason: "the event stream ended", pushed: undefined };
    this.stream = run;
    this.scheduleProbe();
    if (channels.length === 0) {
      // Nothing to follow yet: the stream opens with the first subscribe.
      this.onStreamConnected(undefined);
      return;
    }

    // Where the client stands in each channel, in the stream's own id format: the gateway resumes every one there.
    const lastEventId = channels.filter((s) => s.position).map((s) => `${s.channel}:${s.position!.epoch}:${s.position!.offset}`).join(";");
    void this.runStream(run, this.streamUrl(channels.map((s) => s.channel)), lastEventId);
  }

  private async runStream(run: EventStreamRun, url: string, lastEventId: string): Promise<void> {
    const fetcher = this.options.fetch ?? globalThis.fetch;
    try {
      const token = await resolveToken(this.options.token);
      const headers: Record<string, string> = { accept: "text/event-stream" };
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
      let data: string[] = [];
      this.watchStream(run);
      for (;;) {
        const { done, value } = await reader.read();
        if (done || run !== this.stream) {
          return;
        }

        this.watchStream(run);
        buffer += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, "");
          buffer = buffer.slice(newline + 1);
          if (line === "") {
            if (data.length > 0) {
              this.onStreamEvent(run, data.join("\n"));
              data = [];
            }
          } else if (line.startsWith("data:")) {
            data.push(line.slice(line[5] === " " ? 6 : 5));
          }

          // Comments (the heartbeat), ids and retry: the client keeps positions itself and decides its own waits.
          if (run !== this.stream) {
            return;
          }
        }
      }
    } catch (error) {
      if (run === this.stream && !run.controller.signal.aborted) {
        run.reason = error instanceof Error ? error.message : String(error);
      }
    } finally {
      if (run === this.stream) {
        this.onStreamClosed(run);
      }
    }
  }

  private onStreamConnected(node: string | undefined): void {
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

  private onStreamEvent(run: EventStreamRun, json: string): void {
    let push: Record<string, unknown>;
    try {
      push = JSON.parse(json) as Record<string, unknown>;
    } catch {
      this.emit("error", new Error(`Unreadable event from the gateway: ${json.slice(0, 100)}`));
      return;
    }

    const channel = push.channel as string | undefined;
    const subscription = channel === undefined ? undefined : this.subscriptions.get(channel);
    switch (push.type) {
      case "subscribed":
        if (subscription) {
          const position = { epoch: push.epoch as string, offset: push.offset as number };
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
          const position = { epoch: push.epoch as string, offset: push.offset as number };
          subscription.position = position;
          this.safely(() => subscription.options.onReset?.(position));
        }

        break;
      case "message":
        if (subscription) {
          this.onMessage(subscription, push.offset as number, push.data);
        }

        break;
      case "join":
        this.safely(() => subscription?.options.onJoin?.({ client: push.client as string, user: push.user as string }));
        break;
      case "leave":
        this.safely(() => subscription?.options.onLeave?.({ client: push.client as string, user: push.user as string }));
        break;
      case "disconnect":
        run.code = push.code as number;
        run.reason = push.reason as string;
        run.pushed = push.reconnect as boolean;
        break;
    }
  }

  private onStreamClosed(run: EventStreamRun): void {
    this.stream = undefined;
    this.timers.clearTimeout(this.liveness);
    for (const subscription of this.subscriptions.values()) {
      subscription.active = false;
    }

    if (this.stopped) {
      return;
    }

    const policy = reconnectPolicy(run.code, typeof this.options.token === "function", run.pushed);
    const info: CloseInfo = { code: run.code, reason: run.reason, reconnect: policy.reconnect };
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
  private restartStream(): void {
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
  private watchStream(run: EventStreamRun): void {
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
  private scheduleProbe(): void {
    this.timers.clearTimeout(this.probeTimer);
    this.probeTimer = this.timers.setTimeout(() => {
      if (this.transport !== "eventstream" || this.stopped) {
        return;
      }

      const url = this.options.endpoints[this.endpointIndex % this.options.endpoints.length]!;
      let probe: WebSocketLike;
      try {
        probe = new this.factory(url, "push.v1.json");
      } catch {
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
  private leaveStream(): void {
    this.timers.clearTimeout(this.probeTimer);
    const run = this.stream;
    this.stream = undefined;
    run?.controller.abort();
    if (run) {
      this.timers.clearTimeout(this.liveness);
    }

    this.transport = "websocket";
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.timers.setTimeout(resolve, ms));
  }
}

/** One event stream's run: aborted to end it, and how it ended, for the same reconnect policy as a WebSocket's close. */
interface EventStreamRun {
  controller: AbortController;
  code: number;
  reason: string;
  pushed: boolean | undefined;
}

/** The detail of a problem-details refusal, or the status line. */
async function problemDetail(response: Response): Promise<string> {
  try {
    const problem = (await response.json()) as { detail?: string; title?: string };
    return problem.detail ?? problem.title ?? `${response.status}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function resolveToken(source: TokenSource): Promise<string | null | undefined> {
  return typeof source === "function" ? await source() : source;
}
