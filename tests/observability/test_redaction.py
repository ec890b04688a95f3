"""The log filter that keeps secrets out of log lines, on records as libraries make them
(the full server session is tests/privacy/test_secrets_leak.py)."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest

from mongars.observability.redaction import RedactSecrets, redact, uvicorn_log_config

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"
TICKET = "v1.42.1796581070.29Q4rztLhyhj58PKqEp5Wz.4y5c6BWkfCv0bbXK9J0OOLQ"


@pytest.fixture
def uvicorn_streams() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """uvicorn's loggers as `mongars serve` sets them up, writing to two buffers."""
    config = uvicorn_log_config()
    err, out = io.StringIO(), io.StringIO()
    config["handlers"]["default"]["stream"] = err
    config["handlers"]["access"]["stream"] = out
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    logging.config.dictConfig(config)
    logging.getLogger("uvicorn.error").setLevel(logging.DEBUG)
    yield err, out
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)


def test_access_and_handshake_lines_keep_their_shape_without_the_secrets(
    uvicorn_streams: tuple[io.StringIO, io.StringIO],
) -> None:
    err, out = uvicorn_streams
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", f"/x?q=cats&token={JWT}", "1.1", 200
    )
    error = logging.getLogger("uvicorn.error")
    error.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", f"/ws/chat?t={TICKET}&thread_id=9")
    error.debug("< %s: %s", "cookie", f"mongars_session={JWT}; theme=dark")
    error.debug("< %s: %s", "user-agent", "websockets/15")
    assert out.getvalue() == (
        'INFO:     127.0.0.1:5 - "GET /x?q=cats&token=<redacted> HTTP/1.1" 200 OK\n'
    )
    assert err.getvalue().splitlines() == [
        'INFO:     127.0.0.1:5 - "WebSocket /ws/chat?t=<redacted>&thread_id=9" [accepted]',
        "DEBUG:    < cookie: <redacted>",
        "DEBUG:    < user-agent: websockets/15",
    ]


def test_tokens_in_messages_and_tracebacks_are_replaced() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("mongars.test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("refused Authorization: Bearer %s for %s", "mg_abcdefghij0123456789", "bob")
        try:
            raise ValueError(f"cannot decode {JWT}")
        except ValueError:
            logger.exception("token check failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "mg_abcdefghij" not in text and JWT not in text, text
    assert "refused Authorization: Bearer <redacted> for bob" in text
    assert "ValueError: cannot decode <redacted>" in text


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/v1/memory/search?q=tea&limit=5",
        "the setting t=5 is a plain word",
        "< user-agent: Mozilla/5.0",
        "secret 'secret_key' rotated (Vault kv version 1 -> 2)",
    ],
)
def test_lines_without_secrets_are_left_alone(line: str) -> None:
    assert redact(line) == line


def test_password_hashes_in_logged_sql_parameters_are_replaced() -> None:
    params = "('alice', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaC9oYXNo+w', 1)"
    assert redact(params) == "('alice', '<redacted>', 1)"
