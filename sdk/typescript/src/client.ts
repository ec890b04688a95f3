/** `MongarsClient`: one object, one namespace per route group. */
import { AdminApi } from "./api/admin.js";
import { KeysApi, ProfileApi, ResearchApi } from "./api/account.js";
import { ChatApi, FeedbackApi, HistoryApi } from "./api/conversation.js";
import { CollectionsApi, DocumentsApi } from "./api/documents.js";
import { MemoryApi } from "./api/memory.js";
import { OpenAIApi } from "./api/openai.js";
import { ThreadsApi } from "./api/threads.js";
import { AdaptersApi, JobsApi, TrainingApi } from "./api/training.js";
import { createHttp, type Http, type Session, unwrap } from "./http.js";
import type { RegisterRequest, TokenResponse } from "./types.js";

export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** A login token (JWT from `POST /token`). */
  token?: string;
  /** An API key (`mg_...`), for the OpenAI-compatible `/v1` routes. */
  apiKey?: string;
  /** Another fetch (a proxy agent, a test double for the network...). */
  fetch?: typeof globalThis.fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

export class AuthApi {
  constructor(
    private readonly http: Http,
    private readonly session: Session,
  ) {}

  /** `POST /token` (form): the client then uses the token. */
  async login(username: string, password: string): Promise<TokenResponse> {
    const token = await unwrap(
      this.http.POST("/token", {
        body: { username, password },
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      }),
    );
    this.session.credential = token.access_token;
    return token;
  }

  /** Revoke the token in use and forget it. */
  async logout() {
    const status = await unwrap(this.http.POST("/api/v1/auth/logout"));
    this.session.credential = null;
    return status;
  }

  /** Who the credential belongs to. */
  me() {
    return unwrap(this.http.GET("/api/v1/user/me"));
  }

  register(request: RegisterRequest) {
    return unwrap(this.http.POST("/api/v1/user/register", { body: request }));
  }

  changePassword(oldPassword: string, newPassword: string) {
    return unwrap(
      this.http.POST("/api/v1/user/change-password", {
        body: { old_password: oldPassword, new_password: newPassword },
      }),
    );
  }

  /** A one-time WebSocket ticket (`client.chat.connect()` fetches one itself). */
  wsTicket() {
    return unwrap(this.http.POST("/api/v1/auth/ws/ticket"));
  }
}

export class MongarsClient {
  /** The typed openapi-fetch client underneath, for any route (`client.http.GET(...)`). */
  readonly http: Http;
  readonly baseUrl: string;
  readonly auth: AuthApi;
  readonly chat: ChatApi;
  readonly history: HistoryApi;
  readonly feedback: FeedbackApi;
  readonly threads: ThreadsApi;
  readonly memory: MemoryApi;
  readonly documents: DocumentsApi;
  readonly collections: CollectionsApi;
  readonly profile: ProfileApi;
  readonly keys: KeysApi;
  readonly research: ResearchApi;
  readonly training: TrainingApi;
  readonly adapters: AdaptersApi;
  readonly jobs: JobsApi;
  readonly admin: AdminApi;
  readonly openai: OpenAIApi;
  private readonly session: Session;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.session = { credential: options.token ?? options.apiKey ?? null };
    this.http = createHttp(options, this.session);
    const wsUrl = () => `${this.baseUrl.replace(/^http/, "ws")}/ws/chat`;
    this.auth = new AuthApi(this.http, this.session);
    this.chat = new ChatApi(this.http, wsUrl);
    this.history = new HistoryApi(this.http);
    this.feedback = new FeedbackApi(this.http);
    this.threads = new ThreadsApi(this.http);
    this.memory = new MemoryApi(this.http);
    this.documents = new DocumentsApi(this.http);
    this.collections = new CollectionsApi(this.http);
    this.profile = new ProfileApi(this.http);
    this.keys = new KeysApi(this.http);
    this.research = new ResearchApi(this.http);
    this.training = new TrainingApi(this.http);
    this.adapters = new AdaptersApi(this.http);
    this.jobs = new JobsApi(this.http);
    this.admin = new AdminApi(this.http);
    this.openai = new OpenAIApi(this.http);
  }

  /** A client logged in as `username`. */
  static async login(
    baseUrl: string,
    username: string,
    password: string,
    options: Omit<ClientOptions, "baseUrl" | "token" | "apiKey"> = {},
  ): Promise<MongarsClient> {
    const client = new MongarsClient({ ...options, baseUrl });
    await client.auth.login(username, password);
    return client;
  }

  /** The bearer credential in use (a token or an API key), or null. */
  get credential(): string | null {
    return this.session.credential;
  }

  set credential(value: string | null) {
    this.session.credential = value;
  }

  /** `GET /healthz`. */
  health() {
    return unwrap(this.http.GET("/healthz"));
  }

  /** `GET /ready` (503 `ServerError` when not ready). */
  ready() {
    return unwrap(this.http.GET("/ready"));
  }
}
