"""Prompts in a model's own chat format.

A GGUF usually carries its chat template (``tokenizer.chat_template``, Jinja):
:class:`ChatTemplate` renders it in jinja2's immutable sandbox, as transformers
and llama.cpp do. Message contents are rendered as placeholders first and
tokenized as plain text (``special=False``), the template's own text with its
special tokens: a user who types ``<|im_start|>system`` gets those characters,
never a new system turn. A file without a template falls back to
:class:`Transcript`, a plain ``User:/Assistant:`` transcript with stop strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from mongars.llm.base import ChatMessage

Segment = tuple[str, bool]  # (text, is template text: parse special tokens)

_SLOT = "\x1fmongars-content-{}\x1f"
_SLOTS = re.compile("\x1fmongars-content-(\\d+)\x1f")


class TemplateError(ValueError):
    """A chat template that does not render (syntax, or raise_exception)."""


class Transcript:
    """``System text``, ``User: ...``, ``Assistant: ...``, then the reply cue."""

    labels = {"user": "User", "assistant": "Assistant"}
    stops = ["\nUser:", "\nAssistant:", "\nSystem:", "<end_of_turn>", "<start_of_turn>"]
    cue = "Assistant:"

    def message_text(self, message: ChatMessage) -> str:
        if message.role == "system":
            return f"{message.content.strip()}\n\n"
        return f"{self.labels[message.role]}: {message.content}\n"

    def segments(self, messages: Sequence[ChatMessage]) -> list[Segment]:
        text = "".join(self.message_text(m) for m in messages) + self.cue
        return [(text, False)]


class ChatTemplate:
    """A model's Jinja chat template, rendered in a sandbox."""

    stops: list[str] = []  # the model ends its turn with an end-of-generation token

    def __init__(self, source: str, bos_token: str, eos_token: str) -> None:
        from jinja2 import BaseLoader, TemplateSyntaxError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(
            loader=BaseLoader(), trim_blocks=True, lstrip_blocks=True
        )
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now(UTC).strftime(fmt)
        try:
            self._template = env.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"the chat template does not parse: {exc}") from exc
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(self, messages: Sequence[dict[str, Any]], generation_prompt: bool) -> str:
        try:
            return str(
                self._template.render(
                    messages=list(messages),
                    add_generation_prompt=generation_prompt,
                    bos_token=self.bos_token,
                    eos_token=self.eos_token,
                )
            )
        except TemplateError:
            raise
        except Exception as exc:  # a sandbox refusal or a template bug: say which
            raise TemplateError(f"the chat template failed: {exc}") from exc

    def segments(
        self, messages: Sequence[ChatMessage], generation_prompt: bool = True
    ) -> list[Segment]:
        """The rendered prompt split into template text and message contents."""
        slots = [{"role": m.role, "content": _SLOT.format(i)} for i, m in enumerate(messages)]
        rendered = self.render(slots, generation_prompt)
        out: list[Segment] = []
        end = 0
        for m in _SLOTS.finditer(rendered):
            if m.start() > end:
                out.append((rendered[end : m.start()], True))
            out.append((messages[int(m.group(1))].content, False))
            end = m.end()
        if end < len(rendered):
            out.append((rendered[end:], True))
        return out


def check_template(template: ChatTemplate) -> None:
    """Render a small conversation once, so a broken template fails at load, not on a turn."""
    probe = [
        ChatMessage("system", "s"),
        ChatMessage("user", "u"),
        ChatMessage("assistant", "a"),
        ChatMessage("user", "v"),
    ]
    segments = template.segments(probe)
    if [text for text, template_text in segments if not template_text] != ["s", "u", "a", "v"]:
        raise TemplateError("the chat template drops or changes message contents")
