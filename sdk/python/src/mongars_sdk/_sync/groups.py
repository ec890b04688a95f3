# Generated from _async/groups.py by sdk/python/scripts/generate.py (unasync):
# do not edit, run `make sdk-generate`.
"""The route groups other than chat (``client.threads``, ``client.memory``...).

Generated, do not edit: the source is ``_async/groups.py``.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Literal

from mongars_sdk import _generated as m
from mongars_sdk._common import dump, params, seg

if TYPE_CHECKING:
    from mongars_sdk._sync.client import Client

Rating = Literal["up", "down"]


class _Group:
    def __init__(self, client: Client) -> None:
        self._c = client


class History(_Group):
    def list(
        self, *, limit: int | None = None, session_id: str | None = None, user_id: str | None = None
    ) -> builtins.list[m.HistoryItem]:
        """Your turns, newest first (``user_id``: yourself, by name or id)."""
        query = params(limit=limit, session_id=session_id, user_id=user_id)
        return self._c._list(m.HistoryItem, "GET", "/api/v1/conversation/history", query=query)


class Threads(_Group):
    def list(self, *, limit: int | None = None, cursor: str | None = None) -> m.ThreadPage:
        query = params(limit=limit, cursor=cursor)
        return self._c._call(m.ThreadPage, "GET", "/api/v1/threads", query=query)

    def create(self, title: str | None = None) -> m.ThreadOut:
        return self._c._call(m.ThreadOut, "POST", "/api/v1/threads", json=params(title=title))

    def get(self, thread_id: str) -> m.ThreadOut:
        return self._c._call(m.ThreadOut, "GET", f"/api/v1/threads/{seg(thread_id)}")

    def rename(self, thread_id: str, title: str) -> m.ThreadOut:
        path = f"/api/v1/threads/{seg(thread_id)}"
        return self._c._call(m.ThreadOut, "PATCH", path, json={"title": title})

    def delete(self, thread_id: str) -> None:
        self._c._request("DELETE", f"/api/v1/threads/{seg(thread_id)}")

    def messages(
        self, thread_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> m.MessagePage:
        path = f"/api/v1/threads/{seg(thread_id)}/messages"
        query = params(limit=limit, cursor=cursor)
        return self._c._call(m.MessagePage, "GET", path, query=query)

    def search(
        self, q: str, *, limit: int | None = None, cursor: str | None = None
    ) -> m.SearchPage:
        query = params(q=q, limit=limit, cursor=cursor)
        return self._c._call(m.SearchPage, "GET", "/api/v1/threads/search", query=query)


class Memory(_Group):
    def list(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        kind: str | None = None,
        thread_id: str | None = None,
    ) -> m.MemoryPage:
        query = params(limit=limit, cursor=cursor, kind=kind, thread_id=thread_id)
        return self._c._call(m.MemoryPage, "GET", "/api/v1/memory", query=query)

    def add(self, text: str) -> m.MemoryOut:
        return self._c._call(m.MemoryOut, "POST", "/api/v1/memory", json={"text": text})

    def get(self, memory_id: int) -> m.MemoryOut:
        return self._c._call(m.MemoryOut, "GET", f"/api/v1/memory/{memory_id}")

    def edit(self, memory_id: int, text: str) -> m.MemoryOut:
        path = f"/api/v1/memory/{memory_id}"
        return self._c._call(m.MemoryOut, "PATCH", path, json={"text": text})

    def forget(self, memory_id: int) -> None:
        self._c._request("DELETE", f"/api/v1/memory/{memory_id}")

    def forget_all(self) -> m.ForgetAllOut:
        query = {"confirm": True}
        return self._c._call(m.ForgetAllOut, "DELETE", "/api/v1/memory", query=query)

    def search(self, q: str, *, k: int | None = None, thread_id: str | None = None) -> m.SearchOut:
        query = params(q=q, k=k, thread_id=thread_id)
        return self._c._call(m.SearchOut, "GET", "/api/v1/memory/search", query=query)

    def facts(
        self, *, include_past: bool | None = None, limit: int | None = None
    ) -> builtins.list[m.FactOut]:
        query = params(include_past=include_past, limit=limit)
        return self._c._list(m.FactOut, "GET", "/api/v1/memory/facts", query=query)

    def export(self) -> m.ExportOut:
        """Everything the server holds about you (account, turns, memories, documents...)."""
        return self._c._call(m.ExportOut, "GET", "/api/v1/memory/export")


class Documents(_Group):
    def upload(
        self,
        filename: str,
        content: bytes,
        *,
        collection: str | None = None,
        path: str | None = None,
        shared: bool | None = None,
        content_type: str = "application/octet-stream",
    ) -> m.IngestOut:
        form = params(collection=collection, path=path, shared=shared)
        files = {"file": (filename, content, content_type)}
        return self._c._call(m.IngestOut, "POST", "/api/v1/documents", data=form, files=files)

    def list(
        self, *, collection: str | None = None, cursor: int | None = None, limit: int | None = None
    ) -> m.DocumentPage:
        query = params(collection=collection, cursor=cursor, limit=limit)
        return self._c._call(m.DocumentPage, "GET", "/api/v1/documents", query=query)

    def get(self, document_id: int) -> m.DocumentOut:
        return self._c._call(m.DocumentOut, "GET", f"/api/v1/documents/{document_id}")

    def delete(self, document_id: int) -> None:
        self._c._request("DELETE", f"/api/v1/documents/{document_id}")

    def search(
        self, query: str, *, k: int | None = None, collections: builtins.list[str] | None = None
    ) -> m.SearchResponse:
        body = params(query=query, k=k, collections=collections)
        return self._c._call(m.SearchResponse, "POST", "/api/v1/documents/search", json=body)

    def collections(self) -> builtins.list[m.CollectionOut]:
        return self._c._list(m.CollectionOut, "GET", "/api/v1/collections")

    def create_collection(
        self, name: str, *, description: str | None = None, shared: bool | None = None
    ) -> m.CollectionOut:
        body = params(name=name, description=description, shared=shared)
        return self._c._call(m.CollectionOut, "POST", "/api/v1/collections", json=body)

    def delete_collection(self, collection_id: int) -> None:
        self._c._request("DELETE", f"/api/v1/collections/{collection_id}")


class Profile(_Group):
    def get(self) -> m.ProfileOut:
        return self._c._call(m.ProfileOut, "GET", "/api/v1/profile")

    def update(self, body: m.ProfileUpdate | None = None, **fields: Any) -> m.ProfileOut:
        """Set preferences (``tone``, ``verbosity``, ``allow_training``...); the fields
        not given stay as they are."""
        payload = dump(body or m.ProfileUpdate(**fields))
        return self._c._call(m.ProfileOut, "PUT", "/api/v1/profile", json=payload)

    def delete(self) -> None:
        self._c._request("DELETE", "/api/v1/profile")


class Feedback(_Group):
    """Your rating of an answer (by its ``turn_id``)."""

    def set(
        self,
        turn_id: int,
        *,
        rating: Rating | None = None,
        correction: str | None = None,
        comment: str | None = None,
    ) -> m.FeedbackOut:
        """Create or replace the whole feedback (what is left out is cleared)."""
        body = {"rating": rating, "correction": correction, "comment": comment}
        path = f"/api/v1/conversation/turns/{turn_id}/feedback"
        return self._c._call(m.FeedbackOut, "POST", path, json=body)

    def get(self, turn_id: int) -> m.FeedbackOut:
        path = f"/api/v1/conversation/turns/{turn_id}/feedback"
        return self._c._call(m.FeedbackOut, "GET", path)

    def delete(self, turn_id: int) -> None:
        self._c._request("DELETE", f"/api/v1/conversation/turns/{turn_id}/feedback")


class Training(_Group):
    """Datasets and LoRA training runs (admin)."""

    def curate(self, body: m.DatasetCreate | None = None) -> m.DatasetOut:
        payload = dump(body) if body else None
        return self._c._call(m.DatasetOut, "POST", "/api/v1/training/datasets", json=payload)

    def datasets(self, *, cursor: str | None = None, limit: int | None = None) -> m.DatasetPage:
        query = params(cursor=cursor, limit=limit)
        return self._c._call(m.DatasetPage, "GET", "/api/v1/training/datasets", query=query)

    def dataset(self, dataset_id: str) -> m.DatasetOut:
        path = f"/api/v1/training/datasets/{seg(dataset_id)}"
        return self._c._call(m.DatasetOut, "GET", path)

    def delete_dataset(self, dataset_id: str) -> None:
        self._c._request("DELETE", f"/api/v1/training/datasets/{seg(dataset_id)}")

    def export_dataset(self, dataset_id: str) -> str:
        """The dataset's records as JSONL."""
        path = f"/api/v1/training/datasets/{seg(dataset_id)}/export"
        return (self._c._request("GET", path)).text

    def start(
        self, dataset_id: str, *, objective: str | None = None, max_steps: int | None = None
    ) -> m.RunOut:
        body = params(dataset_id=dataset_id, objective=objective, max_steps=max_steps)
        return self._c._call(m.RunOut, "POST", "/api/v1/training/runs", json=body)

    def runs(self, *, cursor: str | None = None, limit: int | None = None) -> m.RunPage:
        query = params(cursor=cursor, limit=limit)
        return self._c._call(m.RunPage, "GET", "/api/v1/training/runs", query=query)

    def run(self, run_id: str) -> m.RunOut:
        return self._c._call(m.RunOut, "GET", f"/api/v1/training/runs/{seg(run_id)}")

    def pause(self, run_id: str) -> m.RunOut:
        return self._run_action(run_id, "pause")

    def resume(self, run_id: str) -> m.RunOut:
        return self._run_action(run_id, "resume")

    def cancel(self, run_id: str) -> m.RunOut:
        return self._run_action(run_id, "cancel")

    def _run_action(self, run_id: str, action: str) -> m.RunOut:
        path = f"/api/v1/training/runs/{seg(run_id)}/{action}"
        return self._c._call(m.RunOut, "POST", path)


class Adapters(_Group):
    """LoRA adapter versions: the approval gate, activation, canary, rollback (admin)."""

    def list(
        self, *, state: str | None = None, before: int | None = None, limit: int | None = None
    ) -> m.AdapterPage:
        query = params(state=state, before=before, limit=limit)
        return self._c._call(m.AdapterPage, "GET", "/api/v1/adapters", query=query)

    def get(self, version_id: int) -> m.MongarsAdaptersSchemasAdapterOut:
        path = f"/api/v1/adapters/{version_id}"
        return self._c._call(m.MongarsAdaptersSchemasAdapterOut, "GET", path)

    def active(self) -> m.PointerOut:
        return self._c._call(m.PointerOut, "GET", "/api/v1/adapters/active")

    def register(self, run_id: str) -> m.MongarsAdaptersSchemasAdapterOut:
        return self._c._call(
            m.MongarsAdaptersSchemasAdapterOut,
            "POST",
            "/api/v1/adapters/register",
            json={"run_id": run_id},
        )

    def approve(self, version_id: int, note: str = "") -> m.MongarsAdaptersSchemasAdapterOut:
        path = f"/api/v1/adapters/{version_id}/approve"
        return self._c._call(m.MongarsAdaptersSchemasAdapterOut, "POST", path, json={"note": note})

    def reject(self, version_id: int, note: str = "") -> m.MongarsAdaptersSchemasAdapterOut:
        path = f"/api/v1/adapters/{version_id}/reject"
        return self._c._call(m.MongarsAdaptersSchemasAdapterOut, "POST", path, json={"note": note})

    def activate(self, version_id: int, note: str = "") -> m.PointerOut:
        path = f"/api/v1/adapters/{version_id}/activate"
        return self._c._call(m.PointerOut, "POST", path, json={"note": note})

    def canary(
        self, version_id: int, *, share: float | None = None, note: str = ""
    ) -> m.PointerOut:
        path = f"/api/v1/adapters/{version_id}/canary"
        body = params(share=share, note=note)
        return self._c._call(m.PointerOut, "POST", path, json=body)

    def stop_canary(self, note: str = "") -> m.PointerOut:
        path = "/api/v1/adapters/canary/stop"
        return self._c._call(m.PointerOut, "POST", path, json={"note": note})

    def rollback(self, note: str = "") -> m.PointerOut:
        path = "/api/v1/adapters/rollback"
        return self._c._call(m.PointerOut, "POST", path, json={"note": note})

    def deactivate(self, note: str = "") -> m.PointerOut:
        path = "/api/v1/adapters/deactivate"
        return self._c._call(m.PointerOut, "POST", path, json={"note": note})

    def prune(self, keep: int | None = None) -> m.Pruned:
        body = params(keep=keep)
        return self._c._call(m.Pruned, "POST", "/api/v1/adapters/prune", json=body)

    def changes(
        self, *, before: int | None = None, limit: int | None = None
    ) -> builtins.list[m.ChangeOut]:
        query = params(before=before, limit=limit)
        return self._c._list(m.ChangeOut, "GET", "/api/v1/adapters/changes", query=query)

    def compare(self, *, days: float | None = None) -> m.Comparison:
        query = params(days=days)
        return self._c._call(m.Comparison, "GET", "/api/v1/adapters/compare", query=query)


class Jobs(_Group):
    """The scheduler's named jobs (admin)."""

    def list(self) -> m.JobList:
        return self._c._call(m.JobList, "GET", "/api/v1/jobs")

    def runs(
        self, name: str, *, cursor: str | None = None, limit: int | None = None
    ) -> m.JobRunPage:
        path = f"/api/v1/jobs/{seg(name)}/runs"
        return self._c._call(m.JobRunPage, "GET", path, query=params(cursor=cursor, limit=limit))

    def run(self, name: str) -> m.JobRunOut:
        return self._c._call(m.JobRunOut, "POST", f"/api/v1/jobs/{seg(name)}/run")

    def pause(self, name: str) -> m.JobOut:
        return self._c._call(m.JobOut, "POST", f"/api/v1/jobs/{seg(name)}/pause")

    def resume(self, name: str) -> m.JobOut:
        return self._c._call(m.JobOut, "POST", f"/api/v1/jobs/{seg(name)}/resume")

    def cancel(self, name: str) -> m.JobOut:
        return self._c._call(m.JobOut, "POST", f"/api/v1/jobs/{seg(name)}/cancel")


class Admin(_Group):
    """Accounts, the audit log and models (admin)."""

    def users(self) -> builtins.list[m.UserOut]:
        return self._c._list(m.UserOut, "GET", "/api/v1/admin/users")

    def create_user(self, username: str, password: str, *, is_admin: bool = False) -> m.UserOut:
        body = {"username": username, "password": password, "is_admin": is_admin}
        return self._c._call(m.UserOut, "POST", "/api/v1/admin/users", json=body)

    def set_admin(self, username: str, is_admin: bool) -> m.UserOut:
        path = f"/api/v1/admin/users/{seg(username)}/admin"
        return self._c._call(m.UserOut, "POST", path, query={"is_admin": is_admin})

    def set_active(self, username: str, is_active: bool) -> m.UserOut:
        path = f"/api/v1/admin/users/{seg(username)}/active"
        return self._c._call(m.UserOut, "POST", path, query={"is_active": is_active})

    def reset_password(self, username: str, password: str) -> m.UserOut:
        path = f"/api/v1/admin/users/{seg(username)}/password"
        return self._c._call(m.UserOut, "POST", path, json={"password": password})

    def audit(self, *, limit: int | None = None, before: int | None = None) -> m.AuditPage:
        query = params(limit=limit, before=before)
        return self._c._call(m.AuditPage, "GET", "/api/v1/admin/audit", query=query)

    def models(self) -> m.ModelsOut:
        return self._c._call(m.ModelsOut, "GET", "/api/v1/models")

    def provision(
        self, roles: builtins.list[str] | None = None, *, force: bool = False
    ) -> m.ProvisionReport:
        body = {"roles": roles, "force": force}
        return self._c._call(m.ProvisionReport, "POST", "/api/v1/models/provision", json=body)


class Keys(_Group):
    """Your API keys for the OpenAI-compatible routes."""

    def create(self, body: m.ApiKeyCreate | None = None, **fields: Any) -> m.ApiKeyCreated:
        payload = dump(body or m.ApiKeyCreate(**fields))
        return self._c._call(m.ApiKeyCreated, "POST", "/api/v1/keys", json=payload)

    def list(self) -> builtins.list[m.ApiKeyOut]:
        return self._c._list(m.ApiKeyOut, "GET", "/api/v1/keys")

    def update(self, key_id: int, body: m.ApiKeyUpdate | None = None, **fields: Any) -> m.ApiKeyOut:
        payload = dump(body or m.ApiKeyUpdate(**fields))
        return self._c._call(m.ApiKeyOut, "PATCH", f"/api/v1/keys/{key_id}", json=payload)

    def revoke(self, key_id: int) -> None:
        self._c._request("DELETE", f"/api/v1/keys/{key_id}")


class OpenAI(_Group):
    """``/v1``: the OpenAI-compatible routes (authenticate with ``api_key=``)."""

    def models(self) -> m.ModelList:
        return self._c._call(m.ModelList, "GET", "/v1/models")

    def chat_completion(
        self, body: m.ChatCompletionRequest | None = None, **fields: Any
    ) -> m.ChatCompletion:
        """A non-streamed completion (``messages``, ``model``...); for streaming use an
        OpenAI client or ``client.chat.stream``."""
        payload = dump(body or m.ChatCompletionRequest(**fields))
        payload["stream"] = False
        return self._c._call(m.ChatCompletion, "POST", "/v1/chat/completions", json=payload)
