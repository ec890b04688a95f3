export { AuthApi, MongarsClient, type ClientOptions } from "./client.js";
export * from "./errors.js";
export {
  ChatStream,
  parseStreamEvent,
  type CancelledEvent,
  type ChatStreamOptions,
  type DeltaEvent,
  type DoneEvent,
  type StreamEvent,
} from "./sse.js";
export {
  ChatSocket,
  Generation,
  SocketClosedError,
  type Ack,
  type ChatCancelled,
  type ChatCompleted,
  type ChatDelta,
  type ChatErrorEvent,
  type ChatStarted,
  type GenerationEvent,
  type HistorySnapshot,
  type SocketEvent,
  type WebSocketConstructor,
  type WsConnected,
} from "./socket.js";
export type { Upload } from "./api/documents.js";
export type { ChatCompletionChunk } from "./api/openai.js";
export type { Http } from "./http.js";
export type * from "./types.js";
