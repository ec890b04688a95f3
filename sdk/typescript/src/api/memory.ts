/** memory: your memories (list, remember, edit, forget, search, export, facts). */
import { done, type Http, unwrap } from "../http.js";
import type { MemoryEdit, Query } from "../types.js";

export class MemoryApi {
  constructor(private readonly http: Http) {}

  list(query: Query<"list_memories_api_v1_memory_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/memory", { params: { query } }));
  }

  /** Remember a note. */
  create(text: string) {
    return unwrap(this.http.POST("/api/v1/memory", { body: { text } }));
  }

  get(memoryId: number) {
    return unwrap(this.http.GET("/api/v1/memory/{memory_id}", { params: { path: { memory_id: memoryId } } }));
  }

  edit(memoryId: number, edit: MemoryEdit) {
    return unwrap(
      this.http.PATCH("/api/v1/memory/{memory_id}", {
        params: { path: { memory_id: memoryId } },
        body: edit,
      }),
    );
  }

  /** Forget one memory. */
  delete(memoryId: number) {
    return done(
      this.http.DELETE("/api/v1/memory/{memory_id}", { params: { path: { memory_id: memoryId } } }),
    );
  }

  /** Forget every memory you have (cannot be undone; threads are kept). */
  forgetAll() {
    return unwrap(this.http.DELETE("/api/v1/memory", { params: { query: { confirm: true } } }));
  }

  search(query: Query<"search_memories_api_v1_memory_search_get">) {
    return unwrap(this.http.GET("/api/v1/memory/search", { params: { query } }));
  }

  export() {
    return unwrap(this.http.GET("/api/v1/memory/export"));
  }

  facts(query: Query<"list_facts_api_v1_memory_facts_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/memory/facts", { params: { query } }));
  }

  factFailures(query: Query<"fact_failures_api_v1_memory_facts_failures_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/memory/facts/failures", { params: { query } }));
  }
}
