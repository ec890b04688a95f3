/** chat (HTTP, SSE, WebSocket), history, feedback. */
import { errorFromResponse } from "../errors.js";
import { done, type Http, unwrap } from "../http.js";
import { ChatSocket, type WebSocketConstructor } from "../socket.js";
import { ChatStream, type ChatStreamOptions } from "../sse.js";
import type { ChatRequest, FeedbackIn, Query } from "../types.js";

type ChatInput = string | ChatRequest;
const body = (input: ChatInput): ChatRequest => (typeof input === "string" ? { message: input } : input);

/** The body of a `parseAs: "stream"` call; an error answer (already read) throws. */
export function streamBody(result: { response: Response; error?: unknown }): ReadableStream<Uint8Array> {
  const { response } = result;
  if (!response.ok) throw errorFromResponse(response, result.error);
  if (!response.body) throw new TypeError("the stream response has no body");
  return response.body;
}

export class ChatApi {
  constructor(
    private readonly http: Http,
    private readonly wsUrl: () => string,
  ) {}

  /** One answer, whole: `POST /api/v1/conversation/chat`. */
  send(input: ChatInput) {
    return unwrap(this.http.POST("/api/v1/conversation/chat", { body: body(input) }));
  }

  /**
   * The answer as it is generated (SSE): `for await (const event of client.chat.stream("Hi"))`.
   * The request starts when iteration does; HTTP errors throw from the first `next()`.
   */
  stream(input: ChatInput, options: ChatStreamOptions = {}): ChatStream {
    return new ChatStream(
      async (after, signal) => {
        const call = after
          ? this.http.GET("/api/v1/conversation/generations/{generation_id}/events", {
              params: { path: { generation_id: after.generationId }, query: { after: after.index } },
              parseAs: "stream",
              signal,
            })
          : this.http.POST("/api/v1/conversation/chat/stream", {
              body: body(input),
              parseAs: "stream",
              signal,
            });
        return streamBody(await call);
      },
      (generationId) => this.cancel(generationId),
      options,
    );
  }

  /** Follow a generation again after `lastIndex` (-1: from its start), e.g. after a restart. */
  resume(generationId: string, lastIndex = -1, options: ChatStreamOptions = {}): ChatStream {
    return new ChatStream(
      async (after, signal) => {
        const result = await this.http.GET("/api/v1/conversation/generations/{generation_id}/events", {
          params: {
            path: { generation_id: generationId },
            query: { after: after?.index ?? lastIndex },
          },
          parseAs: "stream",
          signal,
        });
        return streamBody(result);
      },
      (id) => this.cancel(id),
      options,
      { generationId, index: lastIndex },
    );
  }

  /** Stop an answer (from any client); its stream ends with `cancelled`. */
  cancel(generationId: string) {
    return unwrap(
      this.http.POST("/api/v1/conversation/generations/{generation_id}/cancel", {
        params: { path: { generation_id: generationId } },
      }),
    );
  }

  /** A WebSocket for chat (a one-time ticket is fetched first). */
  async connect(options: { threadId?: string; WebSocket?: WebSocketConstructor } = {}): Promise<ChatSocket> {
    const { ticket } = await unwrap(this.http.POST("/api/v1/auth/ws/ticket"));
    const url = new URL(this.wsUrl());
    url.searchParams.set("t", ticket);
    if (options.threadId) url.searchParams.set("thread_id", options.threadId);
    return ChatSocket.connect(url.toString(), options.WebSocket);
  }

  /** The answer as WAV audio (501 `tts_unavailable` when the server has no TTS engine). */
  async speech(turnId: number): Promise<ArrayBuffer> {
    return unwrap(
      this.http.GET("/api/v1/conversation/turns/{turn_id}/speech", {
        params: { path: { turn_id: turnId } },
        parseAs: "arrayBuffer",
      }),
    ) as Promise<ArrayBuffer>;
  }
}

export class HistoryApi {
  constructor(private readonly http: Http) {}

  /** Your turns, newest first (`user_id` defaults to you on the server side: pass your username). */
  list(query: Query<"history_api_v1_conversation_history_get">) {
    return unwrap(this.http.GET("/api/v1/conversation/history", { params: { query } }));
  }
}

export class FeedbackApi {
  constructor(private readonly http: Http) {}

  /** Create or replace your feedback on one of your turns. */
  set(turnId: number, feedback: FeedbackIn) {
    return unwrap(
      this.http.POST("/api/v1/conversation/turns/{turn_id}/feedback", {
        params: { path: { turn_id: turnId } },
        body: feedback,
      }),
    );
  }

  /** Your feedback on a turn (404 `not_found` when there is none). */
  get(turnId: number) {
    return unwrap(
      this.http.GET("/api/v1/conversation/turns/{turn_id}/feedback", {
        params: { path: { turn_id: turnId } },
      }),
    );
  }

  delete(turnId: number) {
    return done(
      this.http.DELETE("/api/v1/conversation/turns/{turn_id}/feedback", {
        params: { path: { turn_id: turnId } },
      }),
    );
  }
}
