/**
 * Server-Sent Events: typed chat events, parsed with eventsource-parser.
 *
 * `POST /api/v1/conversation/chat/stream` sends `delta` events, then one `done`
 * (or `cancelled`, or `error`); every event has the id `<generation_id>:<index>`.
 * A `ChatStream` resumes by itself when the connection drops mid-answer
 * (`GET /generations/{id}/events?after=<last index>`), and never yields an index twice.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

import { errorForCode, MongarsError } from "./errors.js";
import type { ChatResponse } from "./types.js";

interface Base {
  generation_id: string;
  index: number;
}
/** A piece of the answer; the deltas concatenate to the final response. */
export interface DeltaEvent extends Base {
  type: "delta";
  text: string;
}
/** The answer is complete and stored: `result` is what `/chat` returns. */
export interface DoneEvent extends Base {
  type: "done";
  result: ChatResponse;
}
/** The answer was cancelled; `text` is the part generated (stored as cancelled). */
export interface CancelledEvent extends Base {
  type: "cancelled";
  text: string;
}
export type StreamEvent = DeltaEvent | DoneEvent | CancelledEvent;

/** One SSE frame -> a typed event; an `error` frame throws its `MongarsError` (status 0). */
export function parseStreamEvent(message: EventSourceMessage): StreamEvent {
  const id = message.id ?? "";
  const cut = id.lastIndexOf(":");
  const generation_id = cut >= 0 ? id.slice(0, cut) : id;
  const index = cut >= 0 ? Number(id.slice(cut + 1)) : -1;
  const data = JSON.parse(message.data) as Record<string, unknown>;
  switch (message.event) {
    case "delta":
      return { type: "delta", generation_id, index, text: String(data.text) };
    case "done":
      return { type: "done", generation_id, index, result: data as unknown as ChatResponse };
    case "cancelled":
      return { type: "cancelled", generation_id, index, text: String(data.text) };
    case "error":
      throw errorForCode(String(data.code ?? "error"), String(data.detail ?? ""));
    default:
      throw new MongarsError(0, "unknown_event", `unexpected SSE event ${message.event}`);
  }
}

/**
 * The SSE messages of a response body, in batches (those each network chunk completed):
 * one await per chunk rather than per event. Leaving the loop closes the body.
 */
export async function* readBatches(body: ReadableStream<Uint8Array>): AsyncGenerator<EventSourceMessage[]> {
  let batch: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => batch.push(message) });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (batch.length) {
        const ready = batch;
        batch = [];
        yield ready;
      }
    }
    parser.feed(decoder.decode());
    if (batch.length) yield batch;
  } finally {
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** The SSE messages of a response body, one by one. */
export async function* readMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<EventSourceMessage> {
  for await (const batch of readBatches(body)) yield* batch;
}

/** Opens the stream: `after` null starts the answer, a number resumes it after that index. */
export type Opener = (
  after: { generationId: string; index: number } | null,
  signal?: AbortSignal,
) => Promise<ReadableStream<Uint8Array>>;

export interface ChatStreamOptions {
  signal?: AbortSignal;
  /** How many times to reconnect after a dropped connection (default 3). */
  maxResumes?: number;
}

/**
 * An answer streamed over SSE: iterate it (once) for typed events.
 * `generationId`, `lastIndex` and `text` follow what was received, so the
 * caller can resume later with `client.chat.resume(generationId, lastIndex)`.
 */
export class ChatStream implements AsyncIterable<StreamEvent> {
  generationId: string | null;
  lastIndex: number;
  /** The answer so far (the deltas received). */
  text = "";
  /** The final `/chat` response, once `done` arrived. */
  result: ChatResponse | null = null;
  /** How many times the stream reconnected after a dropped connection. */
  resumes = 0;
  private started = false;

  constructor(
    private readonly open: Opener,
    private readonly cancelRequest: (generationId: string) => Promise<unknown>,
    private readonly options: ChatStreamOptions = {},
    resumeFrom?: { generationId: string; index: number },
  ) {
    this.generationId = resumeFrom?.generationId ?? null;
    this.lastIndex = resumeFrom?.index ?? -1;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<StreamEvent> {
    if (this.started) throw new Error("a ChatStream can be iterated only once");
    this.started = true;
    const { signal, maxResumes = 3 } = this.options;
    let position = this.generationId ? { generationId: this.generationId, index: this.lastIndex } : null;
    for (;;) {
      const body = await this.open(position, signal);
      try {
        for await (const batch of readBatches(body)) {
          for (const message of batch) {
            const event = parseStreamEvent(message);
            if (event.index <= this.lastIndex && event.generation_id === this.generationId) continue;
            this.generationId = event.generation_id;
            this.lastIndex = event.index;
            if (event.type === "delta") this.text += event.text;
            if (event.type === "done") this.result = event.result;
            yield event;
            if (event.type !== "delta") return;
          }
        }
      } catch (error) {
        // Our own errors (an `error` event, a bad frame) and the caller's abort end the
        // stream; a network failure is retried below.
        if (error instanceof MongarsError || signal?.aborted || !(error instanceof TypeError)) {
          throw error;
        }
      }
      // The connection ended before a final event: the answer goes on on the server.
      if (this.generationId === null || this.resumes >= maxResumes) {
        throw new MongarsError(0, "stream_interrupted", "the stream ended before the answer did");
      }
      this.resumes += 1;
      position = { generationId: this.generationId, index: this.lastIndex };
    }
  }

  /** Stop the answer on the server; the stream then ends with a `cancelled` event. */
  async cancel(): Promise<void> {
    if (this.generationId === null) {
      throw new MongarsError(0, "not_started", "no event received yet: nothing to cancel");
    }
    await this.cancelRequest(this.generationId);
  }

  /** Read the stream to its end and return the final response (throws if cancelled). */
  async finalResponse(): Promise<ChatResponse> {
    for await (const event of this) {
      if (event.type === "cancelled") {
        throw errorForCode("cancelled", "the answer was cancelled");
      }
    }
    if (!this.result) throw new MongarsError(0, "stream_interrupted", "no final event");
    return this.result;
  }
}
