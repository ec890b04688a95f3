"""The SDKs are generated from sdk/openapi.json: it must be the API's current schema.

When this fails, run `make sdk-generate` (it rewrites sdk/openapi.json and both SDKs'
generated types) and commit the result.
"""

from __future__ import annotations

import json
from pathlib import Path

from mongars.app import create_app
from mongars.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_is_the_apps_schema(tmp_path: Path) -> None:
    current = create_app(Settings(data_dir=tmp_path)).openapi()
    committed = json.loads((ROOT / "sdk" / "openapi.json").read_text())
    assert committed == current, (
        "the API's OpenAPI schema changed: run `make sdk-generate` and commit sdk/"
    )
