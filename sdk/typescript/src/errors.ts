/**
 * Typed errors for the server's error bodies `{"detail": str, "code": str}`.
 *
 * The class follows the HTTP status; `code` keeps the server's finer reason
 * (e.g. 409 `training_busy` vs `conflict`), so callers can branch on either.
 * Same names as the Python SDK (sdk/python/src/mongars_sdk/errors.py).
 */

export class MongarsError extends Error {
  /** HTTP status; 0 for an error that arrived inside a stream. */
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly response?: Response;

  constructor(status: number, code: string, detail: string, response?: Response) {
    super(`${status} ${code}: ${detail}`);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.response = response;
  }
}

/** 400, e.g. `feature_disabled`. */
export class BadRequestError extends MongarsError {}
/** 401 `not_authenticated`: missing, invalid, expired or revoked credentials. */
export class AuthenticationError extends MongarsError {}
/** 403 `forbidden`. */
export class PermissionDeniedError extends MongarsError {}
/** 404 `not_found`. */
export class NotFoundError extends MongarsError {}
/** 409: `conflict`, `cancelled`, `training_busy`, `adapter_state`... */
export class ConflictError extends MongarsError {}
/** 413: `message_too_long`, `context_too_large`, `too_large`. */
export class PayloadTooLargeError extends MongarsError {}
/** 415 `unsupported_media_type`. */
export class UnsupportedMediaTypeError extends MongarsError {}
/** 422 `invalid_input`: the request body or a parameter was refused. */
export class InvalidInputError extends MongarsError {}
/** 5xx: `provider_error`, `provider_unavailable`, `provider_timeout`... */
export class ServerError extends MongarsError {}
/** A stream that ended with an `error` event after it had started (status 0). */
export class StreamError extends MongarsError {}

/** 429 `rate_limited`; `retryAfter` is the server's `Retry-After` in seconds. */
export class RateLimitError extends MongarsError {
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: string,
    detail: string,
    response?: Response,
    retryAfter: number | null = null,
  ) {
    super(status, code, detail, response);
    this.retryAfter = retryAfter;
  }
}

type ErrorClass = new (status: number, code: string, detail: string, response?: Response) => MongarsError;

const BY_STATUS: Record<number, ErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: InvalidInputError,
};

export function errorClass(status: number): ErrorClass {
  if (status >= 500) return ServerError;
  return BY_STATUS[status] ?? MongarsError;
}

/** `code` and `detail` from a parsed error body (ours, FastAPI's 422, or the OpenAI-style /v1). */
export function describeBody(body: unknown, fallback: string): { code: string; detail: string } {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if (typeof b.detail === "string") {
      return { code: typeof b.code === "string" ? b.code : "error", detail: b.detail };
    }
    if (b.error && typeof b.error === "object") {
      const e = b.error as Record<string, unknown>;
      return { code: String(e.code ?? e.type ?? "error"), detail: String(e.message ?? "") };
    }
    if ("detail" in b) return { code: "invalid_input", detail: JSON.stringify(b.detail) };
  }
  if (typeof body === "string" && body) return { code: "http_error", detail: body.slice(0, 500) };
  return { code: "http_error", detail: fallback };
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** The typed error for a non-2xx response whose body was already parsed (`body`). */
export function errorFromResponse(response: Response, body: unknown): MongarsError {
  const { code, detail } = describeBody(body, response.statusText);
  if (response.status === 429) {
    const retry = parseRetryAfter(response.headers.get("Retry-After"));
    return new RateLimitError(response.status, code, detail, response, retry);
  }
  return new (errorClass(response.status))(response.status, code, detail, response);
}

/** Read a non-2xx response's body (JSON when it is JSON) and build its typed error. */
export async function errorFromFetch(response: Response): Promise<MongarsError> {
  const text = await response.text().catch(() => "");
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return errorFromResponse(response, body);
}

const STATUS_BY_CODE: Record<string, number> = {
  not_authenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  cancelled: 409,
  invalid_input: 422,
  rate_limited: 429,
  message_too_long: 413,
  context_too_large: 413,
  provider_error: 502,
  empty_output: 502,
  provider_unavailable: 503,
  provider_timeout: 504,
};

/**
 * The typed error for a `{code, detail}` that arrived inside a stream or a WebSocket
 * event: the class follows the code, `status` stays 0 (no HTTP response carried it).
 */
export function errorForCode(code: string, detail: string): MongarsError {
  const status = STATUS_BY_CODE[code];
  if (status === 429) return new RateLimitError(0, code, detail);
  if (status === undefined) return new StreamError(0, code, detail);
  return new (errorClass(status))(0, code, detail);
}
