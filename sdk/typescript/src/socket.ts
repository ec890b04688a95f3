/**
 * WebSocket chat (`/ws/chat`, docs/websocket.md): send, cancel, resume, follow.
 *
 * Uses the platform's WebSocket when there is one (browsers, Node >= 22), else the
 * `ws` package (Node 20). Every event of every generation of the user reaches every
 * socket of that user, so the socket keeps a log per generation and `Generation`
 * iterators read their own, each `(generation_id, index)` once.
 */
import { AuthenticationError, errorForCode, MongarsError, PermissionDeniedError } from "./errors.js";

interface GenerationFields {
  generation_id: string;
  thread_id: string;
  index: number;
}
export interface WsConnected {
  type: "ws.connected";
  connection_id: string;
  user: string;
  heartbeat_s: number;
}
export interface HistorySnapshot {
  type: "history.snapshot";
  thread_id: string | null;
  messages: Array<{
    turn_id: number;
    query: string;
    response: string;
    status: string;
    created_at: string;
    citations?: unknown[];
  }>;
  running: Array<{ generation_id: string; thread_id: string }>;
}
export interface Ack {
  type: "ack";
  for: string;
  ref: string | null;
  ok: boolean;
  generation_id?: string;
  thread_id?: string;
  replayed?: number;
  error?: { code: string; detail: string };
}
export interface ChatStarted extends GenerationFields {
  type: "chat.started";
  client_id: string | null;
  regenerate: boolean;
}
export interface ChatDelta extends GenerationFields {
  type: "chat.delta";
  text: string;
}
export interface ChatCompleted extends GenerationFields {
  type: "chat.completed";
  text: string;
  turn_id: number;
  usage: Record<string, number>;
  latency: number;
  confidence: number | null;
  speech_turn: unknown;
  finish_reason: string;
  model: string;
  memory_ids: number[];
  citations: Array<Record<string, unknown>>;
}
export interface ChatCancelled extends GenerationFields {
  type: "chat.cancelled";
  text: string;
}
export interface ChatErrorEvent extends Partial<GenerationFields> {
  type: "chat.error";
  code: string;
  detail: string;
  client_id?: string | null;
}
export interface ProtocolError {
  type: "error";
  code: string;
  detail: string;
}
export interface Ping {
  type: "ping";
  ts: number;
}
export type GenerationEvent = ChatStarted | ChatDelta | ChatCompleted | ChatCancelled | ChatErrorEvent;
export type SocketEvent = WsConnected | HistorySnapshot | Ack | GenerationEvent | ProtocolError | Ping;

const TERMINAL = new Set(["chat.completed", "chat.cancelled", "chat.error"]);
const KEEP_GENERATIONS = 100;

/** The socket closed (`closeCode` as in docs/websocket.md: 4401 ticket, 4403 origin...). */
export class SocketClosedError extends MongarsError {
  readonly closeCode: number;
  constructor(closeCode: number, reason: string) {
    super(0, "socket_closed", `WebSocket closed (${closeCode}) ${reason}`.trim());
    this.closeCode = closeCode;
  }
}

/** The subset of the WHATWG WebSocket that both the platform's and `ws` implement. */
interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const platform = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (platform) return platform;
  const ws = await import("ws");
  return ws.WebSocket as unknown as WebSocketConstructor;
}

function closeError(code: number, reason: string): MongarsError {
  if (code === 4401) return new AuthenticationError(0, "not_authenticated", reason || "ticket refused");
  if (code === 4403) return new PermissionDeniedError(0, "forbidden", reason || "origin refused");
  return new SocketClosedError(code, reason);
}

/** One generation's events by index: live and replayed ones can arrive out of order. */
interface Log {
  events: Map<number, GenerationEvent>;
  finished: boolean;
}

export class ChatSocket {
  connected!: WsConnected;
  snapshot!: HistorySnapshot;
  private readonly logs = new Map<string, Log>();
  private readonly acks = new Map<string, { resolve: (a: Ack) => void; reject: (e: Error) => void }>();
  private waiters: Array<() => void> = [];
  private readonly listeners = new Set<(event: SocketEvent) => void>();
  private closed: MongarsError | null = null;
  private sequence = 0;

  private constructor(private readonly ws: WebSocketLike) {}

  /** Connect with a one-time ticket; resolves once the server's snapshot has arrived. */
  static async connect(url: string, WebSocketImpl?: WebSocketConstructor): Promise<ChatSocket> {
    const Impl = WebSocketImpl ?? (await defaultWebSocket());
    const socket = new ChatSocket(new Impl(url));
    await socket.handshake();
    return socket;
  }

  private handshake(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.addEventListener("message", (event: { data: unknown }) => {
        let message: SocketEvent;
        try {
          const data =
            typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data as ArrayBuffer);
          message = JSON.parse(data) as SocketEvent;
        } catch {
          return; // the server sends JSON objects only; anything else is ignored
        }
        if (message.type === "ws.connected") this.connected = message;
        if (message.type === "history.snapshot") {
          this.snapshot = message;
          resolve();
        }
        this.dispatch(message);
      });
      this.ws.addEventListener("close", (event: { code: number; reason: string }) => {
        this.closed = closeError(event.code, String(event.reason ?? ""));
        for (const pending of this.acks.values()) pending.reject(this.closed);
        this.acks.clear();
        this.wake();
        reject(this.closed);
      });
      this.ws.addEventListener("error", () => undefined); // the close event follows
    });
  }

  private dispatch(message: SocketEvent): void {
    if (message.type === "ping") this.write({ type: "pong" });
    if (message.type === "ack" && message.ref !== null) {
      const pending = this.acks.get(message.ref);
      if (pending) {
        this.acks.delete(message.ref);
        if (message.ok) pending.resolve(message);
        else pending.reject(errorForCode(message.error?.code ?? "error", message.error?.detail ?? ""));
      }
    }
    if (message.type.startsWith("chat.") && "generation_id" in message && message.generation_id) {
      const event = message as GenerationEvent & GenerationFields;
      const log = this.log(event.generation_id);
      if (log.events.has(event.index)) return; // a replay of what we already have
      log.events.set(event.index, event);
      log.finished ||= TERMINAL.has(event.type);
      this.wake();
    }
    for (const listener of this.listeners) listener(message);
  }

  private log(generationId: string): Log {
    let log = this.logs.get(generationId);
    if (!log) {
      log = { events: new Map(), finished: false };
      this.logs.set(generationId, log);
      if (this.logs.size > KEEP_GENERATIONS) {
        const oldest = [...this.logs].find(([, l]) => l.finished);
        if (oldest) this.logs.delete(oldest[0]);
      }
    }
    return log;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private write(message: Record<string, unknown>): void {
    if (this.closed) throw this.closed;
    this.ws.send(JSON.stringify(message));
  }

  /** Send a client message and wait for its `ack` (a refused one throws its error). */
  async request(message: Record<string, unknown>): Promise<Ack> {
    const clientId = (message.client_id as string | undefined) ?? `ts-${++this.sequence}`;
    const ack = new Promise<Ack>((resolve, reject) => this.acks.set(clientId, { resolve, reject }));
    this.write({ ...message, client_id: clientId });
    return ack;
  }

  /** Start an answer (a new thread when `threadId` is absent). */
  async send(message: string, options: { threadId?: string; clientId?: string } = {}): Promise<Generation> {
    const ack = await this.request({
      type: "chat.send",
      message,
      thread_id: options.threadId,
      client_id: options.clientId,
    });
    return new Generation(this, ack.generation_id as string, ack.thread_id ?? null, -1);
  }

  /** Answer the thread's last message again (the new answer replaces the old one). */
  async regenerate(threadId: string): Promise<Generation> {
    const ack = await this.request({ type: "chat.regenerate", thread_id: threadId });
    return new Generation(this, ack.generation_id as string, ack.thread_id ?? null, -1);
  }

  /** Stop an answer, on whichever server process runs it. */
  async cancel(generationId: string): Promise<Ack> {
    return this.request({ type: "chat.cancel", generation_id: generationId });
  }

  /** Follow an answer again from after `lastIndex` (-1: from the start). */
  async resume(generationId: string, lastIndex = -1): Promise<Generation> {
    const ack = await this.request({
      type: "chat.resume",
      generation_id: generationId,
      last_index: lastIndex,
    });
    return new Generation(this, generationId, ack.thread_id ?? null, lastIndex);
  }

  /** Every message the server sends from now on (acks, pings and other generations too). */
  async *events(): AsyncGenerator<SocketEvent> {
    const queue: SocketEvent[] = [];
    const listener = (event: SocketEvent) => {
      queue.push(event);
      this.wake();
    };
    this.listeners.add(listener);
    try {
      for (;;) {
        while (queue.length) yield queue.shift() as SocketEvent;
        if (this.closed) return;
        await new Promise<void>((wake) => this.waiters.push(wake));
      }
    } finally {
      this.listeners.delete(listener);
    }
  }

  /** @internal The events of one generation after `after`, waiting for new ones. */
  async *follow(generationId: string, after: number): AsyncGenerator<GenerationEvent> {
    // In index order, without gaps: a socket that joined mid-answer gets live events
    // before the ones its `chat.resume` replays (which follow the resume's ack).
    let next = after + 1;
    for (;;) {
      const log = this.log(generationId);
      for (let event = log.events.get(next); event; event = log.events.get(next)) {
        next += 1;
        yield event;
        if (TERMINAL.has(event.type)) return;
      }
      if (this.closed) throw this.closed;
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }

  get isOpen(): boolean {
    return this.closed === null;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.addEventListener("close", () => resolve());
      this.ws.close(1000, "bye");
    });
  }
}

/** One answer on a socket: iterate for its events (`chat.error` throws), or await `completion()`. */
export class Generation implements AsyncIterable<GenerationEvent> {
  /** The answer so far and the last index applied: what `resume` needs after a reconnect. */
  text = "";
  lastIndex: number;

  constructor(
    private readonly socket: ChatSocket,
    readonly generationId: string,
    readonly threadId: string | null,
    after: number,
  ) {
    this.lastIndex = after;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationEvent> {
    for await (const event of this.socket.follow(this.generationId, this.lastIndex)) {
      if (event.type === "chat.error") throw errorForCode(event.code, event.detail);
      this.lastIndex = event.index ?? this.lastIndex;
      if (event.type === "chat.delta") this.text += event.text;
      yield event;
    }
  }

  /** Stop this answer. */
  cancel(): Promise<Ack> {
    return this.socket.cancel(this.generationId);
  }

  /** Wait for the end: the `chat.completed` or `chat.cancelled` event. */
  async completion(): Promise<ChatCompleted | ChatCancelled> {
    for await (const event of this) {
      if (event.type === "chat.completed" || event.type === "chat.cancelled") return event;
    }
    throw new MongarsError(0, "socket_closed", "the socket closed before the answer ended");
  }
}
