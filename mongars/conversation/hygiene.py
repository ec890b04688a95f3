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
    """Feed streamed text; get back what is safe to show, and whether to stop."""

    def __init__(self) -> None:
        self.text = ""  # everything fed so far
        self.emitted = 0  # how much of it was released
        self.cut: Cut | None = None

    def feed(self, chunk: str) -> str:
        """Text now safe to stream. After a cut, nothing more is released."""
        if self.cut is not None:
            return ""
        self.text += chunk
        start = self.text.rfind("\n", 0, self.emitted) + 1  # the line being written
        m = PATTERN.search(self.text, start, partial=True)
        while m is not None and not m.partial and m.start() < self.emitted:
            m = PATTERN.search(self.text, m.start() + 1, partial=True)
        if m is not None and not m.partial:
            self.cut = Cut(m.lastgroup or "unknown", m.start())
            end = len(self.text[: m.start()].rstrip())
        else:  # hold back what may start scaffolding, and trailing whitespace
            end = m.start() if m is not None else len(self.text)
            end = len(self.text[:end].rstrip())
        end = max(end, self.emitted)
        out, self.emitted = self.text[self.emitted : end], end
        return out

    def finish(self) -> str:
        """At the end of the stream: what was held back, unless it was scaffolding."""
        if self.cut is not None:
            return ""
        out = self.text[self.emitted :].rstrip()
        self.emitted += len(out)
        return out

    def answer(self) -> str:
        """The answer as released (what is stored)."""
        return self.text[: self.emitted]
