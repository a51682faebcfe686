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
export declare class PushError extends Error {
    readonly code: string;
    constructor(code: string, message: string);
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
    onmessage: ((event: {
        data: unknown;
    }) => void) | null;
    onclose: ((event: {
        code: number;
        reason: string;
    }) => void) | null;
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
    connected: {
        client: string;
        node: string;
    };
    disconnected: CloseInfo;
    error: Error;
}
/** What happens after a close, by code (docs/protocol.md, close codes). */
export declare function reconnectPolicy(code: number, canRefreshToken: boolean, pushed?: boolean): {
    reconnect: boolean;
    immediately: boolean;
};
/** The wait before reconnect attempt `attempt` (0-based): full jitter up to a doubling ceiling. */
export declare function backoff(attempt: number, minMs: number, maxMs: number, random: () => number): number;
/** One channel subscription. It lives until `unsubscribe()`, through any number of reconnects. */
export declare class Subscription {
    readonly channel: string;
    /** The epoch and last offset delivered, once known. */
    position: StreamPosition | undefined;
    /** Times a resubscribe recovered everything missed. */
    recoveries: number;
    private readonly client;
    /** Stops the subscription, on the server too. */
    unsubscribe(): Promise<void>;
    publish(data: unknown): Promise<StreamPosition>;
}
/**
 * A subscriber client. It connects to one of its endpoints, reconnects with exponential backoff and full jitter (at
 * once after a node drains with 1001), resubscribes every channel from its last offset so each message arrives once
 * and in order, answers pings, takes a silent socket for dead, and refreshes its token before it expires.
 */
export declare class PushClient {
    private readonly options;
    private readonly timers;
    private readonly random;
    private readonly factory;
    private readonly subscriptions;
    private readonly pending;
    private readonly listeners;
    private socket;
    private nextId;
    private endpointIndex;
    private attempt;
    private stopped;
    private pushedReconnect;
    private liveness;
    private reconnectTimer;
    private refreshTimer;
    private pingIntervalMs;
    private firstConnect;
    private connectedOnce;
    private socketConnected;
    private failedOpens;
    private stream;
    private probeTimer;
    private restartQueued;
    /** How the client receives now: over a WebSocket, or over its event-stream fallback (Server-Sent Events). */
    transport: "websocket" | "eventstream";
    state: ConnectionState;
    clientId: string | undefined;
    nodeId: string | undefined;
    /** Connections made after the first. */
    reconnects: number;
    /** How the last connection ended. */
    lastClose: CloseInfo | undefined;
    constructor(options: PushClientOptions);
    /** Subscribes to an event; returns a function that unsubscribes the listener. */
    on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void;
    /** Starts connecting; resolves once connected the first time, rejects if the server refuses for good. */
    connect(): Promise<void>;
    /** Subscribes to a channel (connecting if needed). Messages arrive through `options.onMessage`. */
    subscribe(channel: string, options?: SubscribeOptions): Subscription;
    /** Stops a subscription. */
    unsubscribe(channel: string): Promise<void>;
    /** Publishes over the WebSocket, where the namespace lets clients publish. */
    publish(channel: string, data: unknown): Promise<StreamPosition>;
    /** Reads a channel's history: publications after `since` (or the newest), at most `limit`. */
    history(channel: string, query?: {
        since?: StreamPosition;
        limit?: number;
    }): Promise<{
        epoch: string;
        offset: number;
        messages: Message[];
    }>;
    /** Who is in a channel now, where the namespace keeps presence. */
    presence(channel: string): Promise<PresenceClient[]>;
    /** Closes the connection for good. */
    close(): void;
    private emit;
    private setState;
    private open;
    private handshake;
    /** Channels the server subscribed at connect (the token's `channels` claim), applied before any of their pushes. */
    private applyConnectResult;
    private scheduleRefresh;
    private refresh;
    /** Subscribes (again) on this connection while it lives and the server says to try later. */
    private ensureSubscribed;
    private subscribeOnServer;
    private applySubscribeResult;
    private deliver;
    private safely;
    private request;
    private onFrame;
    private handle;
    private onMessage;
    /** A socket that says nothing for this long is dead (a half-open TCP connection never closes by itself). */
    private watchLiveness;
    private onClosed;
    private scheduleReconnect;
    private detach;
    private canStream;
    private streamUrl;
    private openStream;
    private runStream;
    private onStreamConnected;
    private onStreamEvent;
    private onStreamClosed;
    /** Opens the stream again at once (its channels changed, or a gap showed), resuming every channel. */
    private restartStream;
    /** A stream that says nothing for this long (the heartbeat comes every ping interval) is dead. */
    private watchStream;
    /** While on the stream, tries a WebSocket now and then; one that opens takes over, resuming every channel. */
    private scheduleProbe;
    /** Stops the event stream, if any, keeping every channel's position for whatever comes next. */
    private leaveStream;
    private delay;
}
export {};
