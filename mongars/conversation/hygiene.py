"""Answer hygiene: the one place that decides what may end an answer, for every provider.

Small models continue the patterns they are shown: a role label starts a turn
the user never wrote, a recalled-memory line is copied into the answer, a
template token leaks as text. :class:`ScaffoldingGuard` watches the streamed
answer and cuts it where scaffolding starts. Text that may be the beginning of
scaffolding is held back until it is clear (partial matching, ``regex``), so
what was streamed always equals what is stored. Each cut is counted in
``chat_scaffolding_cut_total`` by kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

# One pattern per kind; line-start patterns only match at the start of a line.
KINDS = {
    "role_label": r"(?m:^)[ \t]*(?:User|Assistant|System|Human|USER|ASSISTANT|SYSTEM)[ \t]*:",
    # a recalled memory copied from the prompt: "- 2026-12-06: the user said ..." (and the
    # older "- [2026-12-06] User: ..." form)
    "memory_line": r"(?m:^)[ \t]*-?[ \t]*\[?\d{4}-\d\d-\d\d\]?:?[ \t]*(?:User:|the user said)",
    "context_block": r"(?m:^)[ \t]*(?:Things you remember from earlier|Sources \(cite them|"
    r"Earlier conversations with this user)|</?(?:memory|sources)>",
    "template_token": r"<\|[A-Za-z0-9_]{1,24}\|>|<(?:start|end)_of_turn>|\[/?INST\]|</?s>",
}
PATTERN = regex.compile("|".join(f"(?P<{kind}>{p})" for kind, p in KINDS.items()))


@dataclass(slots=True)
class Cut:
    kind: str
    at: int  # offset in the answer where scaffolding started


class ScaffoldingGuard:
    """Feed streamed text; get back what is safe to show, and whether to stop.

    Only the unreleased tail is searched, so each token costs the same however long
    the answer grows. No match can start in released text: when it was released, no
    match or partial match started there, and more text cannot create one. The tail
    keeps the last released character in front, so `^` still means a real line start.
    """

    def __init__(self) -> None:
        self._released: list[str] = []
        self._released_len = 0
        # the last released character (a line start at first), then the unreleased text
        self._tail = "\n"
        self.cut: Cut | None = None

    def feed(self, chunk: str) -> str:
        """Text now safe to stream. After a cut, nothing more is released."""
        if self.cut is not None:
            return ""
        self._tail += chunk
        m = PATTERN.search(self._tail, 1, partial=True)
        if m is not None and not m.partial:
            self.cut = Cut(m.lastgroup or "unknown", self._released_len + m.start() - 1)
        # Release up to the (partial) match, holding back trailing whitespace.
        end = m.start() if m is not None else len(self._tail)
        return self._release(len(self._tail[1:end].rstrip()))

    def finish(self) -> str:
        """At the end of the stream: what was held back, unless it was scaffolding."""
        if self.cut is not None:
            return ""
        return self._release(len(self._tail[1:].rstrip()))

    def answer(self) -> str:
        """The answer as released (what is stored)."""
        return "".join(self._released)

    def _release(self, n: int) -> str:
        out = self._tail[1 : 1 + n]
        if out:
            self._released.append(out)
            self._released_len += n
            self._tail = self._tail[n:]  # keeps the last released character in front
        return out
