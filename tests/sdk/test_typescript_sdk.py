"""The TypeScript SDK (sdk/typescript) against a live `mongars serve`.

`npm test` there builds the SDK and runs node's test runner on test/*.test.ts; this
module hands it the `mongars_server` fixture's URL and accounts. It skips when node
or the SDK's node_modules (`npm ci --prefix sdk/typescript`) is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sdk.conftest import Server, node_available

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "typescript"
SCHEMA = SDK / "src" / "schema.ts"
GENERATOR = SDK / "node_modules" / ".bin" / "openapi-typescript"

needs_node = pytest.mark.skipif(
    not node_available() or shutil.which("npm") is None or not (SDK / "node_modules").is_dir(),
    reason="node/npm or sdk/typescript/node_modules missing (run `npm ci --prefix sdk/typescript`)",
)


@needs_node
def test_generated_types_match_the_committed_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.ts"
    # The same command as `npm run generate` (package.json), into a temporary file.
    subprocess.run(
        [str(GENERATOR), "../openapi.json", "-o", str(out), "--default-non-nullable", "false"],
        cwd=SDK,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert out.read_text() == SCHEMA.read_text(), (
        "sdk/typescript/src/schema.ts is not what sdk/openapi.json gives: "
        "run `make sdk-generate` and commit sdk/"
    )


@needs_node
@pytest.mark.model
@pytest.mark.timeout(600)  # tsc (~15 s) and about 20 short generations on 2 cores
def test_typescript_sdk_against_a_live_server(mongars_server: Server) -> None:
    env = {
        **os.environ,
        "MONGARS_URL": mongars_server.base_url,
        "MONGARS_ADMIN": ":".join(mongars_server.admin),
        "MONGARS_USER": ":".join(mongars_server.user),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        ["npm", "test", "--silent"],
        cwd=SDK,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"npm test failed:\n{output[-12000:]}"
    assert "# fail 0" in output and "# pass " in output, output[-4000:]
