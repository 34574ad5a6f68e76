// TypeScript declarations of the netget handshaker: netget-handshaker.mjs
// (the ES module, this package's entry point) and window.netget (set by
// <script src=".../netget-handshaker.js">). Protocol: PROTOCOL.md.

/** Version of the bridge protocol the script speaks. */
export declare const PROTOCOL_VERSION: number;

/** A verified service record, as the bridge sends it. */
export interface NetgetRecord {
  peer: string;
  service: string;
  network: string;
  addrs: string[];
  meta: Record<string, string>;
  seq: number;
  /** RFC 3339 */
  issued_at: string;
  /** RFC 3339 */
  expires_at: string;
}

/** The bridge's limits, from its welcome frame. */
export interface Limits {
  frame_bytes: number;
  in_flight: number;
  max_results: number;
  frames_per_second: number;
  find_timeout_ms: number;
  max_find_timeout_ms: number;
  /** Channel limits, when the bridge serves channels. */
  message_bytes?: number;
  channels?: number;
  channel_bytes_per_second?: number;
}

/** The bridge's welcome frame. */
export interface Welcome {
  type: "welcome";
  version: number;
  peer: string;
  network: string;
  limits: Limits;
  /** What the bridge serves: "find", "channel", "watch", … */
  features?: string[];
}

/** One result frame of a find. */
export interface ResultFrame {
  type: "result";
  id: string;
  record: NetgetRecord;
  source?: string;
  elapsed_ms: number;
}

/**
 * The bridge's error codes, and the script's own (disconnected, closed,
 * cancelled, timeout, bad_endpoint, not_open).
 */
export type ErrorCode =
  | "bad_request" | "unknown_type" | "forbidden" | "rate_limited" | "not_found" | "timeout"
  | "too_large" | "internal" | "busy" | "idle" | "unavailable"
  | "disconnected" | "closed" | "cancelled" | "bad_endpoint" | "not_open"
  | (string & {});

/** Every error the script rejects with or throws. */
export declare class NetgetError extends Error {
  constructor(code: ErrorCode, message: string);
  readonly code: ErrorCode;
}

export interface FindOptions {
  /** At most this many results (the bridge caps it). */
  limit?: number;
  /** Milliseconds (the bridge caps it). */
  timeout?: number;
  signal?: AbortSignal;
}

export interface ConnectOptions {
  /** Only providers whose record metadata holds every pair. */
  where?: Record<string, string>;
  /** Only this provider (a peer ID). */
  peer?: string;
  /** The provider's channel token, if it asks for one. */
  token?: string;
  /** Milliseconds to wait for the channel to open (default 10,000). */
  timeout?: number;
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** The bridge: https://bridge.example or wss://bridge.example/ws. */
  endpoint?: string;
  /** Refuse a bridge on another network. */
  network?: string;
  /** The bridge's token, if it has one. */
  token?: string;
  /** A client name for the bridge's logs. */
  client?: string;
  /** Connect on first use instead of now. */
  lazy?: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
  reconnecting: boolean;
  delay?: number;
}

/** The "message" event of a Channel: data is a string or an ArrayBuffer. */
export interface ChannelMessageEvent extends Event {
  readonly data: string | ArrayBuffer;
}

/** The "close" event of a Channel, as a WebSocket's. */
export interface ChannelCloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/** The "error" event of a Channel (a too_large message, say). */
export interface ChannelErrorEvent extends Event {
  readonly code: ErrorCode;
  readonly message: string;
  readonly error: NetgetError;
}

export interface ChannelEventMap {
  open: Event;
  message: ChannelMessageEvent;
  error: ChannelErrorEvent;
  close: ChannelCloseEvent;
}

/**
 * A channel to one provider, shaped like a WebSocket. Binary messages
 * arrive as ArrayBuffers; iterate with `for await (const data of ch)`.
 */
export declare class Channel extends EventTarget implements AsyncIterable<string | ArrayBuffer> {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: 0 | 1 | 2 | 3;
  /** The service asked for. */
  readonly service: string;
  /** The provider that accepted (a peer ID); null until open. */
  readonly peer: string | null;
  /** The provider's verified record; null until open. */
  readonly record: NetgetRecord | null;
  readonly url: string;
  readonly protocol: string;
  readonly extensions: string;
  readonly binaryType: "arraybuffer";
  /** Bytes the page's WebSocket to the bridge has not sent yet (all channels). */
  readonly bufferedAmount: number;
  onopen: ((this: Channel, ev: Event) => any) | null;
  onmessage: ((this: Channel, ev: ChannelMessageEvent) => any) | null;
  onerror: ((this: Channel, ev: ChannelErrorEvent) => any) | null;
  onclose: ((this: Channel, ev: ChannelCloseEvent) => any) | null;
  /** A text message (string) or a binary one. Throws while connecting. */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  /** code: 1000 (default) or 3000-4999; reason: at most 123 bytes. */
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof ChannelEventMap>(type: K,
    listener: (this: Channel, ev: ChannelEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ChannelEventMap>(type: K,
    listener: (this: Channel, ev: ChannelEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
  [Symbol.asyncIterator](): AsyncIterator<string | ArrayBuffer>;
}

/** A change to the providers of a watched service, as `for await` yields it. */
export type WatchEvent =
  | { type: "add"; peer: string; record: NetgetRecord }
  /** reason: withdrawn, expired, unhealthy, deregistered, unmatched or disconnected. */
  | { type: "remove"; peer: string; reason: string };

export interface WatchOptions {
  /** Metadata a shown provider's record must hold, exactly (at most 32 pairs). */
  where?: Record<string, string>;
  /** Most providers shown at once; default and cap: the bridge's max_results. */
  limit?: number;
  onAdd?: (record: NetgetRecord, frame: ResultFrame) => void;
  onRemove?: (peer: string, reason: string) => void;
  /** The watch ended with an error (forbidden, rate_limited, busy, closed, …). */
  onError?: (err: NetgetError) => void;
}

/** Stops a watch; also async-iterable (leaving the loop stops it). */
export interface WatchHandle extends AsyncIterable<WatchEvent> {
  (): void;
  readonly id: string;
}

/** One session with a bridge. */
export interface NetgetClient {
  /** The WebSocket endpoint. */
  readonly endpoint: string;
  /** The last welcome while connected, else null. */
  readonly welcome: Welcome | null;
  /** Resolves with the first welcome; rejects when refused for good or closed. */
  readonly ready: Promise<Welcome>;
  readonly version: number;
  /** The records of every provider found. */
  find(name: string, opts?: FindOptions): Promise<NetgetRecord[]>;
  /** Calls onResult per provider as it is verified; resolves with the count. */
  findStream(name: string, onResult: (record: NetgetRecord, frame: ResultFrame) => void,
    opts?: FindOptions): Promise<number>;
  /** Opens a channel to a provider of service. */
  connect(service: string, opts?: ConnectOptions): Promise<Channel>;
  /** Another client (an older form of the module-level connect). */
  connect(opts: ClientOptions): NetgetClient;
  /**
   * Follows the providers of name live: onAdd / onRemove as they come and
   * go; resubscribes after a reconnect. Served by bridges listing "watch"
   * in their welcome's features.
   */
  watch(name: string, opts?: WatchOptions): WatchHandle;
  on(event: "open", fn: (welcome: Welcome) => void): () => void;
  on(event: "close", fn: (info: CloseInfo) => void): () => void;
  on(event: "error", fn: (err: NetgetError) => void): () => void;
  off(event: "open" | "close" | "error", fn: (...args: any[]) => void): void;
  /** Ends the session for good. */
  close(): void;
  readonly NetgetError?: typeof NetgetError;
}

/** A new client; endpoint defaults to the bridge this module came from. */
export declare function connect(opts?: ClientOptions): NetgetClient;
/** A channel through the default client. */
export declare function connect(service: string, opts?: ConnectOptions): Promise<Channel>;
/** find through the default client. */
export declare function find(name: string, opts?: FindOptions): Promise<NetgetRecord[]>;
/** findStream through the default client. */
export declare function findStream(name: string, onResult: (record: NetgetRecord, frame: ResultFrame) => void,
  opts?: FindOptions): Promise<number>;

/** The default client, connected on first use to the bridge this module came from. */
declare const netget: NetgetClient;
export default netget;

declare global {
  /** Set by <script src=".../netget-handshaker.js">. */
  var netget: NetgetClient;
}
