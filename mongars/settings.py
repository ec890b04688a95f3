"""One validated Settings object (env prefix ``MONGARS_``, nested groups with ``__``).

Reading settings has no side effects; :func:`ensure_secret_key` is the single
place that may create a file (the generated secret in the data directory) and
is called by the app factory and the CLI, never at import.
"""

from __future__ import annotations

import json
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, NonNegativeInt, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "test"}
SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
LARGE_MODEL_MEMORY_TOKENS = 1500  # recalled memories per prompt for models beyond the packaged


def split_list(value: object) -> object:
    """A list setting from the environment: a JSON list or a comma/space-separated string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part for part in text.replace(",", " ").split() if part]
    return value


class Environment(StrEnum):
    development = "development"
    production = "production"


class RegistrationPolicy(StrEnum):
    admin_only = "admin-only"
    open = "open"
    closed = "closed"


class LLMSettings(BaseModel):
    """Which model answers, and how."""

    provider: Literal["llamacpp", "ollama", "openai", "ray"] = "llamacpp"
    # llamacpp: a packaged model (mongars/llm/model_files.py), prepared into
    # <data_dir>/models on first use, unless model_path names a GGUF file.
    embedded_model: Literal["smollm2-135m-instruct", "gemma3-270m"] = "smollm2-135m-instruct"
    model_path: str = ""
    # ollama / openai / ray: model name on the server, and where the server is: one URL, or
    # several (comma-separated or a JSON list) that are rotated, each behind a circuit
    # breaker (docs/scale-out.md). Both may be given: merged, duplicates dropped.
    model: str = ""
    base_url: str = ""
    base_urls: Annotated[list[str], NoDecode] = []
    api_key: SecretStr = SecretStr("")
    # ollama: POST /api/v1/models/provision may ask the Ollama server to pull a missing
    # model. Pulling from the Ollama registry is egress (the server downloads gigabytes
    # from the internet), so it is off by default (docs/models.md).
    ollama_pull: bool = False
    context_window: int = Field(default=4096, ge=256, le=131072)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    # SmolLM2's recommended sampling: greedy decoding loops on small models ("1.1.1.1...")
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    repeat_penalty: float = Field(default=1.1, ge=1.0, le=2.0, description="llama.cpp, Ollama")
    seed: int = 0
    threads: int = Field(default=0, ge=0, description="0 = all cores")
    # llamacpp: after the first token, streamed text goes out at most this often (0 =
    # every token). At ~100 tokens/s that is two tokens a delta, a difference no reader
    # sees, and half the wake-ups of the server and client that compete with the model
    # for the cores (docs/models.md, "Streaming").
    stream_interval_ms: float = Field(default=15.0, ge=0, le=1000)
    timeout_s: float = Field(default=120.0, gt=0)
    system_prompt: str = "You are monGARS, a helpful, honest and concise AI assistant."
    # Resilience of the HTTP providers (mongars/llm/resilience.py): retries happen only
    # before the first token, with exponential backoff and jitter.
    retries: int = Field(default=3, ge=0, le=20, description="after the first attempt")
    backoff_initial_s: float = Field(default=0.1, gt=0, le=60)
    backoff_max_s: float = Field(default=2.0, gt=0, le=300)
    breaker_threshold: int = Field(default=5, ge=1, description="consecutive failures")
    breaker_cooldown_s: float = Field(default=30.0, gt=0, description="before a probe")
    retry_after_max_s: float = Field(default=30.0, ge=0, description="longest wait honoured")

    @field_validator("base_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        return split_list(value)

    @field_validator("base_url", "base_urls")
    @classmethod
    def _check_urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            if url and not is_http_url(url):
                raise ValueError(
                    f"{url!r} is not a valid endpoint URL: expected http:// or https:// "
                    "and a host, e.g. http://127.0.0.1:11434"
                )
        return value

    @property
    def endpoints(self) -> list[str]:
        """base_url then base_urls, without trailing slashes and duplicates."""
        urls = [u.strip().rstrip("/") for u in [self.base_url, *self.base_urls]]
        return list(dict.fromkeys(u for u in urls if u))


class AuthSettings(BaseModel):
    token_ttl_minutes: int = Field(default=60 * 24, ge=1)
    registration: RegistrationPolicy = RegistrationPolicy.admin_only
    # Login attempts, per account and per client address (limits' notation).
    login_limit_per_account: str = "5/minute"
    login_limit_per_address: str = "20/minute"
    min_password_length: int = Field(default=8, ge=1)


class ChatSettings(BaseModel):
    max_message_chars: int = Field(default=8000, ge=1)
    history_turns: int = Field(default=20, ge=0, description="turns loaded before trimming")
    # Speaking-rate model for speech_turn (docs/speech.md): ~4 syllables/s is a
    # calm conversational rate (about 150 English words a minute).
    syllables_per_second: float = Field(default=4.0, gt=0)


class MemorySettings(BaseModel):
    """Long-term memory (docs/memory.md)."""

    enabled: bool = True
    # Tokens of recalled memories per prompt; None: the model's (Settings.memory_context_tokens:
    # 300 for the packaged 135M/270M models, which answer better with fewer, closer
    # memories (`mongars bench qa`), 1500 for any other model).
    context_tokens: int | None = Field(default=None, ge=0)
    candidates: int = Field(default=50, ge=1, le=1000, description="per ranked list, fused")
    dense_weight: float = Field(default=1.0, ge=0)
    text_weight: float = Field(default=1.0, ge=0)
    recency_weight: float = Field(default=0.002, ge=0)
    half_life_days: float = Field(default=90.0, gt=0)
    embed_threads: int = Field(default=1, ge=1)
    # Where the embedding model runs (memory/embeddings.py): torch (PyTorch batches, ONNX
    # queries), onnx (all on ONNX Runtime, no PyTorch needed: the exports made by
    # `mongars model prepare`), auto = torch when it is installed.
    embed_backend: Literal["auto", "torch", "onnx"] = "auto"
    # Where the embedder's ONNX exports are kept; empty: <data_dir>/models. The image keeps
    # them in a read-only folder of its own (/opt/models), out of the data volume.
    embed_onnx_dir: str = ""
    # bfloat16 matrix products where the CPU has native support (about 3x faster there,
    # vectors within 1e-4 cosine of float32); "auto" measures both at start-up.
    embed_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # Search queries embedded through ONNX Runtime (about twice as fast on one short
    # text; the model is exported once into <data_dir>/models and checked at start).
    embed_query_onnx: bool = True
    # ... in their int8 version (1.4 ms instead of 3.1; cosine ~0.99 to PyTorch's vectors,
    # LoCoMo recall unchanged); false: the float export.
    embed_query_int8: bool = True
    # Full-text words matched, rarest first, while the user's memories holding them add up
    # to less than this share of them (and 1,000): common words cost time and tell little.
    # When even the rarest word is that common, no full-text match (terms.py).
    common_term_share: float = Field(default=0.01, gt=0, le=1)
    # Ranking beyond dense + text (memory/retrieval.py; tuned with `mongars bench memory`):
    time_weight: float = Field(default=0.3, ge=0, description="memories on a date the query names")
    thread_weight: float = Field(default=0.5, ge=0, description="share of the thread's best score")
    neighbours_after: list[float] = [0.9, 0.8]  # shares inherited by the next turns of a hit
    neighbours_before: list[float] = [0.7, 0.6]  # ... and by the turns before it
    neighbour_sources: int = Field(default=20, ge=0, description="hits whose neighbours join")
    # Caches (mongars/memory/cache.py): in-process LRU, Redis when redis_url is set, disk.
    cache_entries: int = Field(default=4096, ge=0, description="per cache, in-process")
    cache_disk: bool = True  # <data_dir>/cache/memory.sqlite3
    cache_disk_entries: int = Field(default=100_000, ge=0)
    cache_results_ttl_s: float = Field(default=600.0, gt=0)
    cache_embeddings_ttl_s: float = Field(default=7 * 86400.0, gt=0)
    facts: bool = False  # fact extraction (off by default for the tiny embedded model)
    # Retention: memory kind -> days kept (0 or absent = forever), applied daily by the
    # scheduler's memory.retention job and by `mongars memory retention`;
    # e.g. MONGARS_MEMORY__RETENTION_DAYS='{"turn": 365}'.
    retention_days: dict[str, NonNegativeInt] = {}
    # Consolidation (`mongars memory consolidate`): near-duplicates of one kind at or
    # above this cosine similarity are merged into the newest one ...
    dedupe_similarity: float = Field(default=0.95, gt=0.0, le=1.0)
    # ... and threads idle this long, with at least this many turns, get a summary memory.
    summarize_after_days: int = Field(default=30, ge=0)
    summarize_min_turns: int = Field(default=6, ge=1)
    summary_max_tokens: int = Field(default=200, ge=16, le=4096)


class RealtimeSettings(BaseModel):
    # Browser origins allowed on /ws/chat besides the server's own (scheme://host[:port]).
    allowed_origins: list[str] = []
    ticket_ttl_s: int = Field(default=60, ge=5, le=60)
    heartbeat_s: float = Field(default=20.0, gt=0)
    heartbeat_timeout_s: float = Field(default=60.0, gt=0)
    queue_size: int = Field(default=2000, ge=10, description="events buffered per socket")
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    # Deprecated: MONGARS_RATE_LIMITS__CHAT (shared with REST, SSE and /v1); when only this
    # is set, it is that limit.
    chat_rate_limit: str | None = None

    @field_validator("chat_rate_limit")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        return None if value is None else check_rate(value)


class RateLimitSettings(BaseModel):
    """Per-user limits on the costly routes (docs/security.md), in the ``limits``
    notation ("30/minute", several joined by ";"); "" = no limit. Moving windows
    counted in memory, per API process."""

    enabled: bool = True
    # Chat over REST, SSE, the console, /v1/chat/completions and the WebSocket (one budget).
    chat: str = "30/minute"
    upload: str = "60/minute"  # document uploads
    training: str = "20/hour"  # dataset curations and training run starts (admins)

    @field_validator("chat", "upload", "training")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        return check_rate(value)


class CorsSettings(BaseModel):
    """Browser access from other origins (docs/security.md): closed unless origins are
    listed. The API authenticates with bearer tokens, so credentials stay off by default."""

    allow_origins: Annotated[list[str], NoDecode] = []  # e.g. https://app.example.com
    allow_credentials: bool = False  # cookies from those origins; never with "*"
    allow_methods: list[str] = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    allow_headers: list[str] = ["Authorization", "Content-Type", "Last-Event-ID"]
    expose_headers: list[str] = ["Retry-After", "Content-Disposition"]
    max_age_s: int = Field(default=600, ge=0, le=86400, description="preflight cache")

    @field_validator("allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return split_list(value)

    @field_validator("allow_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(cors_origin(origin) for origin in value))

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> CorsSettings:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError(
                'cors.allow_origins "*" cannot be combined with cors.allow_credentials=true '
                "(any site could act with a user's cookies): list the origins"
            )
        return self


class PersonaSettings(BaseModel):
    """Per-user steering from the profile (docs/persona.md)."""

    enabled: bool = True
    # Inferred style applies once measured on this many messages (confidence >= 0.5).
    min_observations: int = Field(default=3, ge=1)
    # Exponential moving average weight of a new message (a plain mean until 1/alpha messages).
    ema_alpha: float = Field(default=0.2, gt=0.0, le=1.0)
    terse_max_tokens: int = Field(default=64, ge=1, description="answer budget for terse users")
    technical_temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    cache_ttl_s: float = Field(default=60.0, ge=0.0, description="profile cache per process")


class ResearchSettings(BaseModel):
    """Documents, rag-context, knowledge gaps and web research (docs/research.md)."""

    documents: bool = True  # the document index (shares the memory embedding model)
    rag_enabled: bool = True  # POST /api/v1/review/rag-context answers from the index
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    chunk_tokens: int = Field(default=200, ge=32, le=1000, description="~4 chars each")
    chunk_overlap_tokens: int = Field(default=30, ge=0, le=500)
    # (MiniLM reads 256 word pieces: longer chunks are embedded by their start only.)
    context_tokens: int = Field(default=800, ge=0, description="document passages per prompt")
    passages: int = Field(default=4, ge=0, le=20, description="most passages cited per answer")
    min_passage_score: float = Field(default=0.35, ge=0, le=2, description="fused score to cite")
    # ... and cosine: the best full-text match always scores 1 on its side (BM25 is
    # relative to the best), so a passage must also be close in meaning (MiniLM:
    # related text ~0.5+, unrelated < 0.25).
    min_passage_cosine: float = Field(default=0.3, ge=-1, le=1)
    text_weight: float = Field(default=1.0, ge=0, description="BM25 share in the fused score")
    # Curiosity: a question is a knowledge gap when its best retrieval similarity is below
    # gap_score and fewer than gap_coverage of its key terms appear in what was found.
    gap_score: float = Field(default=0.45, ge=0, le=1)
    gap_coverage: float = Field(default=0.5, ge=0, le=1)
    # Web research (off by default: nothing leaves the machine).
    web: bool = False
    searxng_url: str = ""  # a SearxNG instance (JSON API); empty = DuckDuckGo's HTML page
    research_pages: int = Field(default=3, ge=1, le=10, description="pages fetched per gap")
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    fetch_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    fetch_host_interval_s: float = Field(
        default=1.0, ge=0, description="between requests to a host"
    )
    user_agent: str = "monGARS-Iris/0.1 (+self-hosted research fetcher)"
    # Hosts the fetcher may reach although private (e.g. an intranet wiki); tests use 127.0.0.1.
    allow_private_hosts: list[str] = []


class TrainingSettings(BaseModel):
    """The learning loop: consent, curation policy, governance and the LoRA trainer
    (docs/training.md)."""

    # Privacy first: nobody's conversations train the model unless they say so.
    default_consent: bool = False
    # Default curation policy (a dataset request may override each).
    min_confidence: float = Field(default=0.8, ge=0.0, le=1.0, description="unrated answers")
    include_unrated: bool = True
    held_out_share: float = Field(default=0.1, ge=0.0, lt=1.0, description="of conversations")
    # Governance: a dataset below min_records is quarantined; above max_records refused.
    min_records: int = Field(default=20, ge=1)
    max_records: int = Field(default=50_000, ge=1)
    retention_days: int = Field(default=90, ge=1, description="datasets older are deleted")
    # Trainer defaults (a run request may set max_steps).
    max_steps: int = Field(default=200, ge=1, le=100_000)
    batch_size: int = Field(default=4, ge=1, le=256)
    seq_len: int = Field(default=256, ge=16, le=8192)
    learning_rate: float = Field(default=2e-4, gt=0, le=1.0)
    lora_r: int = Field(default=8, ge=1, le=256)
    lora_alpha: int = Field(default=16, ge=1, le=1024)
    checkpoint_every: int = Field(default=10, ge=1)
    threads: int = Field(default=0, ge=0, description="0 = all cores")
    threads_when_busy: int = Field(default=1, ge=1, description="while users chat")
    # Stop the worker (SIGSTOP) while this process generates an answer, continue after.
    freeze_while_generating: bool = True
    nice: int = Field(default=19, ge=0, le=19)  # and SCHED_IDLE where the kernel allows
    min_free_disk_mb: int = Field(default=500, ge=0)
    mlflow: bool = True  # runs tracked in <data_dir>/mlflow (sqlite store)
    # Energy estimate: CPU seconds x this (a busy laptop/server core draws ~10-20 W).
    watts_per_core: float = Field(default=15.0, ge=0)
    # --- adapters (docs/adapters.md) ---
    # A candidate that passes every gate below may go live without a human.
    auto_activate: bool = False
    # Gates: any that fails needs a human's approval.
    min_perplexity_gain: float = Field(
        default=0.05, ge=0.0, lt=1.0, description="held-out: adapter <= base x (1 - this)"
    )
    max_forgetting_delta: float = Field(
        default=1.0, ge=0.0, description="generic-text perplexity, adapter - base"
    )
    min_dataset_confidence: float = Field(
        default=0.5, ge=0.0, le=1.0, description="mean confidence of the dataset's answers"
    )
    # Share of turns a canary version answers while one runs.
    canary_share: float = Field(default=0.1, gt=0.0, lt=1.0)
    # Entries kept in adapter_manifest.json's history (the database keeps them all).
    manifest_history: int = Field(default=20, ge=1, le=1000)


class RaySettings(BaseModel):
    """The Ray Serve application (`mongars ray serve|deploy`; docs/scale-out.md). API
    processes reach it with MONGARS_LLM__PROVIDER=ray MONGARS_LLM__BASE_URLS=..."""

    host: str = "127.0.0.1"  # where Serve's HTTP proxy listens (and the local head binds)
    port: int = Field(default=8001, ge=1, le=65535)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    # Autoscaling adds a replica when each has more ongoing requests than this.
    target_ongoing_requests: float = Field(default=2.0, gt=0)
    max_ongoing_requests: int = Field(default=8, ge=1, description="per replica, queued inside")
    upscale_delay_s: float = Field(default=2.0, ge=0)
    downscale_delay_s: float = Field(default=60.0, ge=0)
    replica_cpus: float = Field(default=1.0, gt=0, description="Ray CPUs reserved per replica")
    replica_threads: int = Field(default=1, ge=0, description="llama.cpp threads per replica")
    object_store_mb: int = Field(default=128, ge=64, description="local head's object store")


class SchedulerSettings(BaseModel):
    """Sommeil Paradoxal: the one scheduler of background work (docs/jobs.md)."""

    enabled: bool = True
    # The machine is idle once no chat, WebSocket or API request came for this long...
    idle_after_s: float = Field(default=600.0, ge=0)
    # ... and CPU pressure is low: PSI "some avg10" (%) where the kernel has it,
    max_cpu_pressure: float = Field(default=20.0, ge=0, le=100)
    # else the 1-minute load average per core.
    max_load_per_core: float = Field(default=0.7, ge=0)
    # Off: idle-only jobs run whenever they are due (benchmarks' worst case).
    idle_gate: bool = True
    # How often a running idle job checks whether a user came back.
    yield_check_s: float = Field(default=0.5, gt=0)
    # Activity is shared across processes through the database, at most this often.
    activity_write_s: float = Field(default=5.0, ge=0)
    # When the idle cycle looks for work (6 fields: with seconds).
    cycle_schedule: str = "0 * * * * *"
    # Cron overrides per job name, e.g. {"memory.retention": "0 3 * * *"}.
    schedules: dict[str, str] = {}
    # Jobs that never run (their schedule is paused at start).
    disabled: list[str] = []
    # A run's budgets: it stops (yields) at its first step past either; goes on next run.
    budget_s: float = Field(default=3600.0, gt=0)
    energy_budget_wh: float = Field(default=100.0, gt=0)
    # Curate a dataset once this many new consented, rated or corrected turns exist.
    curate_min_feedback: int = Field(default=20, ge=1)
    # Train automatically on a new approved (not quarantined) dataset.
    auto_train: bool = True
    # Users active within this many hours get their memory index warmed.
    warm_recent_h: float = Field(default=24.0, ge=0)
    # Finished job runs (and DBOS workflow records) are kept this many days.
    keep_runs_days: int = Field(default=30, ge=1)
    # Identifies this scheduler to DBOS: a restarted leader recovers its workflows.
    executor_id: str = "mongars-scheduler"
    # How often a process that does not lead checks whether the leader is gone.
    leader_check_s: float = Field(default=10.0, gt=0)
    # "module:function" returning more JobSpecs (custom jobs; tests use it).
    plugins: list[str] = []
    # RAPL sysfs root (energy counters); where unreadable, CPU seconds x watts_per_core.
    rapl_root: Path = Path("/sys/class/powercap")


class EvolutionSettings(BaseModel):
    """The evolution engine: diagnostics every few minutes, a rule table, recorded
    decisions (docs/evolution.md)."""

    enabled: bool = True
    # When the diagnose job runs (cron, 5 fields).
    schedule: str = "*/5 * * * *"
    # Turns, latency and feedback figures cover this many hours.
    window_h: float = Field(default=24.0, gt=0)
    # Roll back the active adapter only with this many rated-or-not turns on each side...
    rollback_min_turns: int = Field(default=30, ge=1)
    # ... and when its thumbs-down rate is worse than its predecessor's at this p-value.
    rollback_p_value: float = Field(default=0.05, gt=0, lt=1)
    # Off: a rollback awaits an admin's approval; on: the engine rolls back itself.
    auto_rollback: bool = False
    # Background work is paused above this CPU pressure: PSI "some avg10" (%),
    max_cpu_pressure: float = Field(default=80.0, ge=0, le=100)
    # or, where the kernel has no PSI, the 1-minute load average per core.
    max_load_per_core: float = Field(default=1.5, ge=0)
    # Schedule curation once this many new consented rated/corrected turns exist.
    train_min_feedback: int = Field(default=20, ge=1)
    # Background jobs may spend this much energy a day (job_runs, last 24 h).
    energy_budget_wh_per_day: float = Field(default=200.0, gt=0)
    # The same rule does not act again within this many minutes.
    cooldown_min: float = Field(default=60.0, ge=0)


class PeersSettings(BaseModel):
    """Federation with paired monGARS nodes (docs/peers.md). Off by default: no peer
    route answers and no telemetry leaves this node."""

    enabled: bool = False
    # Plain HTTP between peers, only for a private link (WireGuard/Tailscale, loopback).
    allow_http: bool = False
    invite_ttl_s: float = Field(default=900.0, gt=0, le=7 * 86400)
    telemetry_interval_s: float = Field(default=5.0, gt=0)
    # A peer is healthy while its telemetry is younger than this.
    stale_after_s: float = Field(default=30.0, gt=0)
    # Signed requests: accepted clock difference and lifetime.
    clock_skew_s: float = Field(default=60.0, gt=0, le=600)
    request_ttl_s: float = Field(default=60.0, gt=0, le=300)
    timeout_s: float = Field(default=10.0, gt=0)
    # How long peers keep accepting a rotated-away signing key.
    key_grace_s: float = Field(default=86400.0, ge=0)
    # Work this node takes from paired peers, and work it hands to them when busy:
    # kinds "chat" (a generation, streamed back) and "embed" (an embedding batch).
    accept: list[Literal["chat", "embed"]] = []
    delegate: list[Literal["chat", "embed"]] = []
    # Delegate only while this node's load factor (generations per slot) is at least this.
    delegate_min_load: float = Field(default=1.0, ge=0)
    # User data goes only to peers paired as the same owner, unless this is true.
    delegate_to_other_owners: bool = False
    # Share of delegated deterministic work (embeddings, temperature-0 answers) re-run
    # here to check the peer; a mismatch quarantines it.
    spot_check_share: float = Field(default=0.05, ge=0, le=1)
    # This node's TLS certificate (PEM), whose fingerprint its invites carry: peers
    # pin it (self-signed certificates need no CA). `mongars serve` serves with it.
    tls_certfile: str = ""
    tls_keyfile: str = ""


class SecretsSettings(BaseModel):
    """Where the JWT secret, the database password and the provider API key come from
    (docs/secrets.md): ``env`` (these settings, and the generated secret file) or
    ``vault`` (a Vault/OpenBao KV v2 entry, read at start and every ``refresh_s``).
    Reading settings never contacts Vault: mongars.secrets does, at start."""

    backend: Literal["env", "vault"] = "env"
    vault_addr: str = ""  # e.g. https://vault.example:8200
    vault_auth: Literal["token", "approle"] = "token"
    vault_token: SecretStr = SecretStr("")
    vault_token_file: Path | None = None  # read at each login (an agent may rewrite it)
    vault_role_id: str = ""
    vault_role_id_file: Path | None = None
    vault_secret_id: SecretStr = SecretStr("")
    vault_secret_id_file: Path | None = None
    vault_approle_mount: str = "approle"
    vault_mount: str = "secret"  # the KV v2 engine's mount
    vault_path: str = "mongars"  # the entry holding secret_key, database_password, llm_api_key
    vault_cacert: Path | None = None  # CA bundle for an https Vault (default: system CAs)
    refresh_s: float = Field(default=300.0, ge=0, description="0 = read once, at start")
    timeout_s: float = Field(default=10.0, gt=0, description="per Vault request")

    def check(self, settings: Settings) -> None:
        """Refuse incomplete or contradictory Vault settings (no I/O)."""
        if self.backend != "vault":
            return
        if not is_http_url(self.vault_addr):
            raise ValueError(
                "MONGARS_SECRETS__BACKEND=vault needs MONGARS_SECRETS__VAULT_ADDR "
                "(http:// or https://, e.g. https://127.0.0.1:8200)"
            )
        if self.vault_auth == "token" and not (
            self.vault_token.get_secret_value() or self.vault_token_file
        ):
            raise ValueError(
                "Vault token auth needs MONGARS_SECRETS__VAULT_TOKEN or ..._VAULT_TOKEN_FILE"
            )
        if self.vault_auth == "approle" and not (
            (self.vault_role_id or self.vault_role_id_file)
            and (self.vault_secret_id.get_secret_value() or self.vault_secret_id_file)
        ):
            raise ValueError(
                "Vault AppRole auth needs MONGARS_SECRETS__VAULT_ROLE_ID(_FILE) and "
                "MONGARS_SECRETS__VAULT_SECRET_ID(_FILE)"
            )
        if settings.secret_key.get_secret_value():
            raise ValueError(
                "MONGARS_SECRET_KEY is set but MONGARS_SECRETS__BACKEND=vault reads the "
                "secret from Vault (key 'secret_key'): unset one of them"
            )
        if settings.database_url and urlsplit(settings.database_url).password:
            raise ValueError(
                "MONGARS_DATABASE_URL holds a password but MONGARS_SECRETS__BACKEND=vault reads "
                "it from Vault (key 'database_password'): remove it from the URL"
            )
        if settings.llm.api_key.get_secret_value():
            raise ValueError(
                "MONGARS_LLM__API_KEY is set but MONGARS_SECRETS__BACKEND=vault reads it "
                "from Vault (key 'llm_api_key'): unset one of them"
            )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MONGARS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Environment = Environment.development
    data_dir: Path = Path("data")
    database_url: str = ""
    # Redis for the event bus (pub/sub fan-out, Streams replay) across API processes.
    redis_url: str = ""
    # Apply migrations at start-up (fine for one process; run `mongars db upgrade`
    # once and set this false when several API processes share a database).
    db_auto_upgrade: bool = True
    secret_key: SecretStr = SecretStr("")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger bodies get 413")
    # Egress guard (mongars/offline.py, docs/privacy.md): while the server runs, outbound
    # sockets beyond loopback, Unix sockets and the hosts the settings name raise an error.
    offline: bool = False
    offline_allow_hosts: list[str] = []  # more hosts the guard lets through

    llm: LLMSettings = LLMSettings()
    auth: AuthSettings = AuthSettings()
    chat: ChatSettings = ChatSettings()
    realtime: RealtimeSettings = RealtimeSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    cors: CorsSettings = CorsSettings()
    memory: MemorySettings = MemorySettings()
    persona: PersonaSettings = PersonaSettings()
    research: ResearchSettings = ResearchSettings()
    training: TrainingSettings = TrainingSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    ray: RaySettings = RaySettings()
    evolution: EvolutionSettings = EvolutionSettings()
    secrets: SecretsSettings = SecretsSettings()  # env or vault (docs/secrets.md)
    peers: PeersSettings = PeersSettings()
    # This node's address as peers reach it (in its invites); default http://HOST:PORT.
    public_url: str = ""
    # Image input: a BLIP captioning model directory (transformers); empty = no image input.
    caption_model: str = ""
    caption_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="decoded image")
    # Speech audio: the espeak-ng program (a name on PATH or a path); empty = no audio.
    tts_binary: str = "espeak-ng"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self.secrets.check(self)
        if self.secrets.backend == "env":  # else checked when read from Vault
            check_secret_key(self.env, self.secret_key.get_secret_value(), "MONGARS_SECRET_KEY")
        if self.llm.max_tokens >= self.llm.context_window:
            raise ValueError("llm.max_tokens must be smaller than llm.context_window")
        if self.llm.provider in ("ollama", "openai", "ray") and not self.llm.endpoints:
            raise ValueError(
                f"provider {self.llm.provider} needs at least one endpoint: set "
                "MONGARS_LLM__BASE_URL or MONGARS_LLM__BASE_URLS (e.g. http://127.0.0.1:11434)"
            )
        if self.llm.backoff_initial_s > self.llm.backoff_max_s:
            raise ValueError("llm.backoff_initial_s must not exceed llm.backoff_max_s")
        legacy = self.realtime.chat_rate_limit
        if legacy is not None and "chat" not in self.rate_limits.model_fields_set:
            self.rate_limits = self.rate_limits.model_copy(update={"chat": legacy})
        return self

    @property
    def memory_context_tokens(self) -> int:
        """Recalled-memory budget per prompt (see MemorySettings.context_tokens)."""
        if self.memory.context_tokens is not None:
            return self.memory.context_tokens
        # The Ray application serves the same packaged model as the embedded provider.
        if self.llm.provider in ("llamacpp", "ray") and not self.llm.model_path:
            from mongars.llm.model_files import CATALOGUE

            return CATALOGUE[self.llm.embedded_model].memory_tokens
        return LARGE_MODEL_MEMORY_TOKENS

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mongars.db').resolve()}"


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_rate(value: str) -> str:
    """A rate in the ``limits`` notation ("30/minute", "10/minute;100/day"), or "" (none)."""
    from limits import parse_many

    text = value.strip()
    if text:
        try:
            parse_many(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: use e.g. '30/minute' or '10/minute;100/day' "
                "('' = no limit)"
            ) from None
    return text


def cors_origin(value: str) -> str:
    """An origin as browsers send it (``HTTPS://App.example:443/`` -> ``https://app.example``),
    or "*"; anything else (a path, another scheme) is refused."""
    text = value.strip()
    if text == "*":
        return text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        port, parts = None, urlsplit("")
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if (
        scheme not in ("http", "https")
        or not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(
            f"{value!r} is not an origin: expected scheme://host[:port] with no path, "
            "e.g. https://app.example.com"
        )
    host = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def check_secret_key(env: Environment, key: str, source: str) -> None:
    """Refuse a placeholder or short signing secret in production."""
    if env is Environment.production and key.lower() in PLACEHOLDER_SECRETS:
        raise ValueError(
            f"{source} must be set to a real secret in production "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        )
    if env is Environment.production and len(key) < 32:
        raise ValueError(f"{source} must be at least 32 characters in production")


def ensure_secret_key(settings: Settings) -> str:
    """Return the signing secret, generating and storing one (mode 0600) if unset.

    The embedded default needs no configuration, so the first start writes a
    random secret into the data directory and later starts reuse it.
    """
    key = settings.secret_key.get_secret_value()
    if key:
        return key
    if settings.secrets.backend == "vault":  # never a generated secret in Vault's place
        from mongars.errors import SecretsUnavailable

        raise SecretsUnavailable(
            "the secret key comes from Vault (MONGARS_SECRETS__BACKEND=vault) but was not "
            "read: resolve the settings with mongars.secrets.resolve_settings first"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its secret
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key
