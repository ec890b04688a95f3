"""The Python SDK's derived code must match its sources.

``_generated.py`` comes from sdk/openapi.json (datamodel-code-generator) and
``_sync/*.py`` from ``_async/*.py`` (unasync). When this fails, run
`make sdk-generate` and commit sdk/.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "sdk" / "python" / "scripts" / "generate.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mongars_sdk_generate", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_are_generated_from_the_committed_schema() -> None:
    gen = _generator()
    assert gen.MODELS.read_text() == gen.render_models(), (
        "sdk/python/src/mongars_sdk/_generated.py is not what sdk/openapi.json gives: "
        "run `make sdk-generate` and commit sdk/"
    )


def test_sync_client_is_generated_from_the_async_one() -> None:
    gen = _generator()
    for name in gen.UNASYNC_FILES:
        assert (gen.SYNC_DIR / name).read_text() == gen.render_sync(name), (
            f"sdk/python/src/mongars_sdk/_sync/{name} is not what _async/{name} gives: "
            "run `make sdk-generate` and commit sdk/"
        )
