/** threads: list, create, rename, delete, messages, search. */
import { done, type Http, unwrap } from "../http.js";
import type { Query } from "../types.js";

export class ThreadsApi {
  constructor(private readonly http: Http) {}

  /** Your threads, latest activity first (`next_cursor` pages on). */
  list(query: Query<"list_threads_api_v1_threads_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/threads", { params: { query } }));
  }

  /** A new, empty thread: chat into it with `session_id` = its `id`. */
  create(title?: string) {
    return unwrap(this.http.POST("/api/v1/threads", { body: title === undefined ? null : { title } }));
  }

  get(threadId: string) {
    return unwrap(
      this.http.GET("/api/v1/threads/{thread_id}", { params: { path: { thread_id: threadId } } }),
    );
  }

  rename(threadId: string, title: string) {
    return unwrap(
      this.http.PATCH("/api/v1/threads/{thread_id}", {
        params: { path: { thread_id: threadId } },
        body: { title },
      }),
    );
  }

  delete(threadId: string) {
    return done(
      this.http.DELETE("/api/v1/threads/{thread_id}", { params: { path: { thread_id: threadId } } }),
    );
  }

  messages(threadId: string, query: Query<"thread_messages_api_v1_threads__thread_id__messages_get"> = {}) {
    return unwrap(
      this.http.GET("/api/v1/threads/{thread_id}/messages", {
        params: { path: { thread_id: threadId }, query },
      }),
    );
  }

  search(query: Query<"search_threads_api_v1_threads_search_get">) {
    return unwrap(this.http.GET("/api/v1/threads/search", { params: { query } }));
  }
}
