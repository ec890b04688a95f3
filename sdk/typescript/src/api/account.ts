/** profile, API keys, research (knowledge gaps, rag-context). */
import { done, type Http, unwrap } from "../http.js";
import type { ApiKeyCreate, ApiKeyUpdate, ProfileUpdate, Query, RagContextRequest } from "../types.js";

export class ProfileApi {
  constructor(private readonly http: Http) {}

  /** Your preferences, measured style and training consent. */
  get() {
    return unwrap(this.http.GET("/api/v1/profile"));
  }

  /** Replace your preferences (`allow_training` changes only when given). */
  update(update: ProfileUpdate) {
    return unwrap(this.http.PUT("/api/v1/profile", { body: update }));
  }

  /** Reset preferences and measured style (consent stays). */
  reset() {
    return done(this.http.DELETE("/api/v1/profile"));
  }
}

export class KeysApi {
  constructor(private readonly http: Http) {}

  /** Your keys, newest first (never the secret). */
  list() {
    return unwrap(this.http.GET("/api/v1/keys"));
  }

  /** Create a key: `key` (`mg_...`) is in this response only. */
  create(key: ApiKeyCreate) {
    return unwrap(this.http.POST("/api/v1/keys", { body: key }));
  }

  update(keyId: number, update: ApiKeyUpdate) {
    return unwrap(
      this.http.PATCH("/api/v1/keys/{key_id}", { params: { path: { key_id: keyId } }, body: update }),
    );
  }

  revoke(keyId: number) {
    return done(this.http.DELETE("/api/v1/keys/{key_id}", { params: { path: { key_id: keyId } } }));
  }
}

export class ResearchApi {
  constructor(private readonly http: Http) {}

  /** Questions nothing covered, and what research did (`all`: admin). */
  gaps(query: Query<"knowledge_gaps_api_v1_research_gaps_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/research/gaps", { params: { query } }));
  }

  ragContext(request: RagContextRequest) {
    return unwrap(this.http.POST("/api/v1/review/rag-context", { body: request }));
  }
}
