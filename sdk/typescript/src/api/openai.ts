/** The OpenAI-compatible `/v1` routes (API key auth: `new MongarsClient({apiKey})`). */
import { type Http, unwrap } from "../http.js";
import { readMessages } from "../sse.js";
import { streamBody } from "./conversation.js";
import type { ChatCompletion, ChatCompletionRequest, components } from "../types.js";

/** One `chat.completion.chunk` of a streamed completion. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string };
    finish_reason: string | null;
  }>;
  usage?: components["schemas"]["CompletionUsage"] | null;
}

export class OpenAIApi {
  constructor(private readonly http: Http) {}

  models() {
    return unwrap(this.http.GET("/v1/models"));
  }

  chatCompletions(request: ChatCompletionRequest): Promise<ChatCompletion> {
    // The route declares JSON and SSE for 200; without `stream` it is always the JSON.
    const call = this.http.POST("/v1/chat/completions", { body: { ...request, stream: false } });
    return unwrap(call) as Promise<ChatCompletion>;
  }

  /** A streamed completion: chunks until `data: [DONE]`. */
  async *streamChatCompletions(
    request: ChatCompletionRequest,
    signal?: AbortSignal,
  ): AsyncGenerator<ChatCompletionChunk> {
    const result = await this.http.POST("/v1/chat/completions", {
      body: { ...request, stream: true },
      parseAs: "stream",
      signal,
    });
    for await (const message of readMessages(streamBody(result))) {
      if (message.data === "[DONE]") return;
      yield JSON.parse(message.data) as ChatCompletionChunk;
    }
  }
}
