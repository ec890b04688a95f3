/** The openapi-fetch client shared by every API group, with bearer auth and typed errors. */
import createClient, { type Client } from "openapi-fetch";

import { errorFromResponse } from "./errors.js";
import type { paths } from "./schema.js";

export type Http = Client<paths>;

/** Where the current bearer credential (login token or `mg_` API key) lives. */
export interface Session {
  credential: string | null;
}

export interface HttpOptions {
  baseUrl: string;
  fetch?: typeof globalThis.fetch;
  headers?: Record<string, string>;
}

export function createHttp(options: HttpOptions, session: Session): Http {
  const http = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    fetch: options.fetch,
    headers: options.headers,
  });
  http.use({
    onRequest({ request }) {
      if (session.credential && !request.headers.has("Authorization")) {
        request.headers.set("Authorization", `Bearer ${session.credential}`);
      }
      return request;
    },
  });
  return http;
}

type Result = { response: Response; data?: unknown; error?: unknown };
type DataOf<R> = R extends { data: infer D } ? D : R extends { data?: infer D } ? D : never;

/** The `data` of a successful openapi-fetch call; a non-2xx answer throws its `MongarsError`. */
export async function unwrap<R extends Result>(call: Promise<R>): Promise<Exclude<DataOf<R>, undefined>> {
  const { response, data, error } = await call;
  if (!response.ok) throw errorFromResponse(response, error);
  return data as Exclude<DataOf<R>, undefined>;
}

/** For 204 routes: throws on error, returns nothing. */
export async function done(call: Promise<Result>): Promise<void> {
  const { response, error } = await call;
  if (!response.ok) throw errorFromResponse(response, error);
}
