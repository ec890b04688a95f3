"""How long work reports progress: the CLI draws it with rich, tests pass nothing."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def stage(self, description: str, total: int | None) -> None:
        """A new stage; ``total`` in bytes when known."""

    def advance(self, done: int) -> None:
        """``done`` more bytes of the current stage."""


class Silent:
    def stage(self, description: str, total: int | None) -> None:
        pass

    def advance(self, done: int) -> None:
        pass
