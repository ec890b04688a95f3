/** admin: accounts, audit log, models, evolution decisions. */
import { type Http, unwrap } from "../http.js";
import type { ProvisionRequest, Query, RegisterRequest } from "../types.js";

export class AdminApi {
  constructor(private readonly http: Http) {}

  /** Every account. */
  listUsers() {
    return unwrap(this.http.GET("/api/v1/admin/users"));
  }

  createUser(request: RegisterRequest) {
    return unwrap(this.http.POST("/api/v1/admin/users", { body: request }));
  }

  /** Promote or demote (effective on the user's next request). */
  setAdmin(username: string, isAdmin: boolean) {
    return unwrap(
      this.http.POST("/api/v1/admin/users/{username}/admin", {
        params: { path: { username }, query: { is_admin: isAdmin } },
      }),
    );
  }

  /** Disable or enable an account. */
  setActive(username: string, isActive: boolean) {
    return unwrap(
      this.http.POST("/api/v1/admin/users/{username}/active", {
        params: { path: { username }, query: { is_active: isActive } },
      }),
    );
  }

  /** Reset a password: every token the user held stops working. */
  resetPassword(username: string, password: string) {
    return unwrap(
      this.http.POST("/api/v1/admin/users/{username}/password", {
        params: { path: { username } },
        body: { password },
      }),
    );
  }

  /** Admin actions, newest first. */
  audit(query: Query<"admin_audit_log_api_v1_admin_audit_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/admin/audit", { params: { query } }));
  }

  /** Usernames (the contract route `GET /api/v1/user/list`). */
  usernames() {
    return unwrap(this.http.GET("/api/v1/user/list"));
  }

  /** The model per role and the adapters training produced. */
  models() {
    return unwrap(this.http.GET("/api/v1/models"));
  }

  provisionModels(request: ProvisionRequest = {}) {
    return unwrap(this.http.POST("/api/v1/models/provision", { body: request }));
  }

  decisions(query: Query<"list_decisions_api_v1_evolution_decisions_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/evolution/decisions", { params: { query } }));
  }

  diagnostics() {
    return unwrap(this.http.GET("/api/v1/evolution/diagnostics"));
  }
}
