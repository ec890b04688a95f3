/** training (datasets, runs), adapters, jobs: admin only. */
import { done, type Http, unwrap } from "../http.js";
import type { CanaryStart, DatasetCreate, Decision, Query, RunCreate } from "../types.js";

export class TrainingApi {
  constructor(private readonly http: Http) {}

  /** Curate a dataset from consenting users' conversations (201; may be `quarantined`). */
  createDataset(request: DatasetCreate | null = null) {
    return unwrap(this.http.POST("/api/v1/training/datasets", { body: request }));
  }

  listDatasets(query: Query<"list_datasets_api_v1_training_datasets_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/training/datasets", { params: { query } }));
  }

  getDataset(datasetId: string) {
    return unwrap(
      this.http.GET("/api/v1/training/datasets/{dataset_id}", {
        params: { path: { dataset_id: datasetId } },
      }),
    );
  }

  deleteDataset(datasetId: string) {
    return done(
      this.http.DELETE("/api/v1/training/datasets/{dataset_id}", {
        params: { path: { dataset_id: datasetId } },
      }),
    );
  }

  /** The dataset's records as JSONL text (chat `messages`). */
  exportDataset(datasetId: string): Promise<string> {
    return unwrap(
      this.http.GET("/api/v1/training/datasets/{dataset_id}/export", {
        params: { path: { dataset_id: datasetId } },
        parseAs: "text",
      }),
    ) as Promise<string>;
  }

  /** Train a LoRA adapter in the background (202). */
  createRun(request: RunCreate) {
    return unwrap(this.http.POST("/api/v1/training/runs", { body: request }));
  }

  listRuns(query: Query<"list_runs_api_v1_training_runs_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/training/runs", { params: { query } }));
  }

  getRun(runId: string) {
    return unwrap(this.http.GET("/api/v1/training/runs/{run_id}", { params: { path: { run_id: runId } } }));
  }

  pauseRun(runId: string) {
    return unwrap(
      this.http.POST("/api/v1/training/runs/{run_id}/pause", { params: { path: { run_id: runId } } }),
    );
  }

  resumeRun(runId: string) {
    return unwrap(
      this.http.POST("/api/v1/training/runs/{run_id}/resume", { params: { path: { run_id: runId } } }),
    );
  }

  cancelRun(runId: string) {
    return unwrap(
      this.http.POST("/api/v1/training/runs/{run_id}/cancel", { params: { path: { run_id: runId } } }),
    );
  }
}

export class AdaptersApi {
  constructor(private readonly http: Http) {}

  list(query: Query<"list_adapters_api_v1_adapters_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/adapters", { params: { query } }));
  }

  get(versionId: number) {
    return unwrap(
      this.http.GET("/api/v1/adapters/{version_id}", { params: { path: { version_id: versionId } } }),
    );
  }

  /** The active pointer: active version, canary, generation. */
  active() {
    return unwrap(this.http.GET("/api/v1/adapters/active"));
  }

  /** A completed sft run's adapter as a candidate (idempotent). */
  register(runId: string) {
    return unwrap(this.http.POST("/api/v1/adapters/register", { body: { run_id: runId } }));
  }

  approve(versionId: number, decision: Decision = {}) {
    return unwrap(
      this.http.POST("/api/v1/adapters/{version_id}/approve", {
        params: { path: { version_id: versionId } },
        body: decision,
      }),
    );
  }

  reject(versionId: number, decision: Decision = {}) {
    return unwrap(
      this.http.POST("/api/v1/adapters/{version_id}/reject", {
        params: { path: { version_id: versionId } },
        body: decision,
      }),
    );
  }

  activate(versionId: number, decision: Decision = {}) {
    return unwrap(
      this.http.POST("/api/v1/adapters/{version_id}/activate", {
        params: { path: { version_id: versionId } },
        body: decision,
      }),
    );
  }

  rollback(decision: Decision = {}) {
    return unwrap(this.http.POST("/api/v1/adapters/rollback", { body: decision }));
  }

  deactivate(decision: Decision = {}) {
    return unwrap(this.http.POST("/api/v1/adapters/deactivate", { body: decision }));
  }

  startCanary(versionId: number, canary: CanaryStart = {}) {
    return unwrap(
      this.http.POST("/api/v1/adapters/{version_id}/canary", {
        params: { path: { version_id: versionId } },
        body: canary,
      }),
    );
  }

  stopCanary(decision: Decision = {}) {
    return unwrap(this.http.POST("/api/v1/adapters/canary/stop", { body: decision }));
  }

  prune(keep?: number) {
    return unwrap(this.http.POST("/api/v1/adapters/prune", { body: keep === undefined ? {} : { keep } }));
  }

  changes(query: Query<"changes_api_v1_adapters_changes_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/adapters/changes", { params: { query } }));
  }

  compare(query: Query<"compare_api_v1_adapters_compare_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/adapters/compare", { params: { query } }));
  }
}

export class JobsApi {
  constructor(private readonly http: Http) {}

  /** The scheduler's jobs, the leader and the idle gate. */
  list() {
    return unwrap(this.http.GET("/api/v1/jobs"));
  }

  runs(name: string, query: Query<"list_runs_api_v1_jobs__name__runs_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/jobs/{name}/runs", { params: { path: { name }, query } }));
  }

  /** Run a job now (202). */
  run(name: string) {
    return unwrap(this.http.POST("/api/v1/jobs/{name}/run", { params: { path: { name } } }));
  }

  pause(name: string) {
    return unwrap(this.http.POST("/api/v1/jobs/{name}/pause", { params: { path: { name } } }));
  }

  resume(name: string) {
    return unwrap(this.http.POST("/api/v1/jobs/{name}/resume", { params: { path: { name } } }));
  }

  cancel(name: string) {
    return unwrap(this.http.POST("/api/v1/jobs/{name}/cancel", { params: { path: { name } } }));
  }
}
