"""One test node: a real uvicorn process with its own data dir (database, keys) and a
scripted model. Settings come from MONGARS_* variables. Usage: python -m tests.peers.node PORT"""

from __future__ import annotations

import os
import sys

import uvicorn

from mongars.app import create_app
from mongars.settings import Settings
from tests.fakes import ScriptedLLM


def _llm() -> ScriptedLLM:
    """TEST_LLM_DELAY: seconds per word, to keep a generation (and the node) busy;
    TEST_LLM_REPLY: what this node's model says (a node that answers differently)."""
    reply = os.environ.get("TEST_LLM_REPLY", "Hello there. How can I help?")
    return ScriptedLLM([reply], delay=float(os.environ.get("TEST_LLM_DELAY", "0")))


def main() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    uvicorn.run(
        create_app(settings, llm=_llm()),
        host=os.environ.get("TEST_HOST", "127.0.0.1"),
        port=int(sys.argv[1]),
        log_level="warning",
        ssl_certfile=settings.peers.tls_certfile or None,
        ssl_keyfile=settings.peers.tls_keyfile or None,
    )


if __name__ == "__main__":
    main()
