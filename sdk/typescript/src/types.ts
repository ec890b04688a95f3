/** Short names for the generated schema types (src/schema.ts, from sdk/openapi.json). */
import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
type S = components["schemas"];

/** Query parameters of an operation, e.g. `Query<"list_threads_api_v1_threads_get">`. */
export type Query<Op extends keyof operations> = NonNullable<operations[Op]["parameters"]["query"]>;

export type TokenResponse = S["TokenResponse"];
export type UserOut = S["UserOut"];
export type RegisterRequest = S["RegisterRequest"];
export type RegisterResponse = S["RegisterResponse"];
export type TicketResponse = S["TicketResponse"];
export type ChatRequest = S["ChatRequest"];
export type ChatResponse = S["ChatResponse"];
export type HistoryItem = S["HistoryItem"];
export type FeedbackIn = S["FeedbackIn"];
export type FeedbackOut = S["FeedbackOut"];
export type ThreadOut = S["ThreadOut"];
export type ThreadPage = S["ThreadPage"];
export type MessagePage = S["MessagePage"];
export type MemoryOut = S["MemoryOut"];
export type MemoryPage = S["MemoryPage"];
export type MemoryEdit = S["MemoryEdit"];
export type DocumentOut = S["DocumentOut"];
export type IngestOut = S["IngestOut"];
export type SearchRequest = S["SearchRequest"];
export type SearchResponse = S["SearchResponse"];
export type CollectionCreate = S["CollectionCreate"];
export type ProfileOut = S["ProfileOut"];
export type ProfileUpdate = S["ProfileUpdate"];
export type ApiKeyCreate = S["ApiKeyCreate"];
export type ApiKeyCreated = S["ApiKeyCreated"];
export type ApiKeyOut = S["ApiKeyOut"];
export type ApiKeyUpdate = S["ApiKeyUpdate"];
export type DatasetCreate = S["DatasetCreate"];
export type DatasetOut = S["DatasetOut"];
export type RunCreate = S["RunCreate"];
export type RunOut = S["RunOut"];
export type AdapterOut = S["mongars__adapters__schemas__AdapterOut"];
export type PointerOut = S["PointerOut"];
export type Decision = S["Decision"];
export type CanaryStart = S["CanaryStart"];
export type JobList = S["JobList"];
export type JobOut = S["JobOut"];
export type JobRunOut = S["JobRunOut"];
export type AuditPage = S["AuditPage"];
export type ModelsOut = S["ModelsOut"];
export type ProvisionRequest = S["ProvisionRequest"];
export type ChatCompletionRequest = S["ChatCompletionRequest"];
export type ChatCompletion = S["ChatCompletion"];
export type RagContextRequest = S["RagContextRequest"];
