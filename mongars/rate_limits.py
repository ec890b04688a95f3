"""Per-user rate limits on the costly routes, as dependencies attached to each of them.

Every costly route is listed here (the decorator names the dependency, so the route
shows it too): one ``chat`` budget per user for REST, SSE, the console and
``/v1/chat/completions`` (the WebSocket takes from the same limiter), one for document
uploads and one for dataset curation and training starts. Admins are not exempt:
one account should not monopolise the model or the trainer. Past a limit: 429 with
``Retry-After`` (``RateLimited``). Limits come from ``settings.rate_limits``; the
counts live in this process's memory (several API processes each count their own).

| Action   | Routes |
|----------|--------|
| chat     | POST /api/v1/conversation/chat, /chat/stream; POST /v1/chat/completions; console /chat/send, /chat/{id}/regenerate; WebSocket chat.send, chat.regenerate |
| upload   | POST /api/v1/documents; console /documents/upload |
| training | POST /api/v1/training/datasets, /runs; console /admin/training/datasets, /runs |
"""  # noqa: E501

from __future__ import annotations

from fastapi import Depends

from mongars.apikeys.deps import ApiKeyPrincipal
from mongars.deps import AdminUser, CurrentUser, RuntimeDep
from mongars.web.session import WebAdmin, WebUser

CHAT, UPLOADS, TRAINING = "chat messages", "document uploads", "training requests"


async def chat_limit(user: CurrentUser, runtime: RuntimeDep) -> None:
    await runtime.rate_limits.chat.check(user.id, CHAT)


async def api_key_chat_limit(who: ApiKeyPrincipal, runtime: RuntimeDep) -> None:
    await runtime.rate_limits.chat.check(who.user.id, CHAT)


async def console_chat_limit(user: WebUser, runtime: RuntimeDep) -> None:
    await runtime.rate_limits.chat.check(user.id, CHAT)


async def upload_limit(user: CurrentUser, runtime: RuntimeDep) -> None:
    await runtime.rate_limits.upload.check(user.id, UPLOADS)


async def console_upload_limit(user: WebUser, runtime: RuntimeDep) -> None:
    await runtime.rate_limits.upload.check(user.id, UPLOADS)


# Admin-only routes: the admin check comes first, so a refused caller spends nothing.
async def training_limit(admin: AdminUser, runtime: RuntimeDep) -> None:
    await runtime.rate_limits.training.check(admin.id, TRAINING)


async def console_training_limit(admin: WebAdmin, runtime: RuntimeDep) -> None:
    await runtime.rate_limits.training.check(admin.id, TRAINING)


ChatLimit = Depends(chat_limit)
ApiKeyChatLimit = Depends(api_key_chat_limit)
ConsoleChatLimit = Depends(console_chat_limit)
UploadLimit = Depends(upload_limit)
ConsoleUploadLimit = Depends(console_upload_limit)
TrainingLimit = Depends(training_limit)
ConsoleTrainingLimit = Depends(console_training_limit)
