"""Regenerate the SDK's derived code (run by `make sdk-generate`).

1. ``_generated.py``: pydantic v2 models from ``sdk/openapi.json``
   (datamodel-code-generator, no timestamp: the output depends on the schema only).
2. ``_sync/client.py`` and ``_sync/groups.py``: the blocking client, from the
   hand-written ``_async/`` files by unasync (async/await removed, names mapped below).

``--check`` writes nothing and exits 1 when a committed file is out of date.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

SDK = Path(__file__).resolve().parents[1]
SCHEMA = SDK.parent / "openapi.json"
PACKAGE = SDK / "src" / "mongars_sdk"
MODELS = PACKAGE / "_generated.py"
ASYNC_DIR = PACKAGE / "_async"
SYNC_DIR = PACKAGE / "_sync"
UNASYNC_FILES = ("client.py", "groups.py")

HEADER = (
    "# Generated from sdk/openapi.json by sdk/python/scripts/generate.py: do not edit,\n"
    "# run `make sdk-generate`.\n"
    "# mypy: disable-error-code=assignment"
)
SYNC_HEADER = (
    "# Generated from _async/{name} by sdk/python/scripts/generate.py (unasync):\n"
    "# do not edit, run `make sdk-generate`.\n"
)
# Async name -> blocking name, on top of unasync's own (__aenter__, AsyncIterator...).
REPLACEMENTS = {
    "AsyncClient": "Client",  # both httpx's and ours
    "AsyncChatSocket": "ChatSocket",
    "AsyncExitStack": "ExitStack",
    "enter_async_context": "enter_context",
    "aconnect_sse": "connect_sse",
    "aiter_sse": "iter_sse",
    "aiter_bytes": "iter_bytes",
    "aread": "read",
    "aclose": "close",
    "asyncio": "sync",  # websockets.asyncio.client -> websockets.sync.client
    "_async": "_sync",  # mongars_sdk._async.groups -> mongars_sdk._sync.groups
}


def render_models(schema: Path = SCHEMA) -> str:
    from datamodel_code_generator import (
        DataModelType,
        InputFileType,
        LiteralType,
        PythonVersion,
        generate,
    )

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "_generated.py"
        generate(
            schema.read_text(),
            input_file_type=InputFileType.OpenAPI,
            input_filename="openapi.json",
            output=out,
            output_model_type=DataModelType.PydanticV2BaseModel,
            target_python_version=PythonVersion.PY_311,
            custom_file_header=HEADER,
            disable_timestamp=True,
            use_standard_collections=True,
            use_union_operator=True,
            use_double_quotes=True,
            use_annotated=True,
            field_constraints=True,
            enum_field_as_literal=LiteralType.All,
            collapse_root_models=True,
            formatters=[],  # formatted below with this SDK's ruff settings, whatever the cwd
        )
        return _ruff_format(out.read_text())


def _ruff_format(source: str) -> str:
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--config", str(SDK / "pyproject.toml"), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def render_sync(name: str) -> str:
    """The blocking version of ``_async/<name>``."""
    import unasync

    rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
    tokens = unasync.tokenize_rt.src_to_tokens((ASYNC_DIR / name).read_text())
    body = unasync.tokenize_rt.tokens_to_src(rule._unasync_tokens(tokens))
    body = body.replace("The asynchronous client.", "The blocking client.", 1)
    body = body.replace("Hand-written; ``_sync/", "Generated, do not edit: the source is ``_async/")
    body = body.replace("`` is generated from it.", "``.", 1)
    # Removing `await` shortens lines: let ruff lay them out as it would by hand.
    return _ruff_format(SYNC_HEADER.format(name=name) + body)


def outputs() -> list[tuple[Path, str]]:
    """Every derived file and what it should hold."""
    return [(MODELS, render_models())] + [
        (SYNC_DIR / name, render_sync(name)) for name in UNASYNC_FILES
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args()
    stale = []
    for path, text in outputs():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(SDK.parent.parent)}")
    if stale:
        print("out of date (run `make sdk-generate`): " + ", ".join(map(str, stale)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
