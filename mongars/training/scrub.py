"""The PII scrubber run before anything is curated into a training dataset.

``Scrubber.scrub(text)`` replaces what its detectors find with typed placeholders
(``[EMAIL]``, ``[PHONE]``...) and counts the replacements per detector;
``Scrubber.find(text)`` reports what is still detected (run on scrubbed output:
any finding quarantines a dataset). docs/training.md ("Scrubbing") lists the
detectors and the choices behind them.

The detectors run one after the other, each on the text the previous ones left,
in ``DETECTOR_ORDER``: secrets first (a token in ``https://TOKEN@host`` is a
secret, not URL credentials), URL credentials before e-mails (``user:pw@host.com``
would read as an address), IBANs before cards and cards before phones (their digit
runs would otherwise be cut into phone numbers), other users' names last (after the
e-mail addresses that may contain them). Placeholders already in the text are never
matched again, so scrubbing is idempotent.

Every pattern is bounded or guarded by a look-behind so that no input makes the
regular expressions backtrack catastrophically; the phone library only sees the
digit-dense windows of a text.
"""

from __future__ import annotations

import ipaddress
import math
import re
import sys
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import phonenumbers
from phonenumbers import Leniency
from stdnum import iban as stdnum_iban

# Bump whenever a change can alter the output for some input: a detector added,
# removed, widened or narrowed, a placeholder renamed, the order changed. Datasets
# and the sanitize audit log record it, so a bump shows which data older rules scrubbed.
SCRUBBER_VERSION = "1"

DETECTOR_ORDER = ("secret", "url_credentials", "email", "ip", "iban", "card", "phone", "name")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in DETECTOR_ORDER}
# NANP (+1) numbers of every member region are found with "US" already; "CA" is kept
# for readers and costs nothing (regions sharing a calling code run once).
DEFAULT_PHONE_REGIONS = ("US", "CA", "GB", "FR", "DE")
MIN_NAME_LENGTH = 3

Span = tuple[int, int]

_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


@dataclass(frozen=True)
class Finding:
    """One detection: ``text[start:end]`` looks like ``kind`` (the matched text is
    kept out of ``repr`` so that logging a finding does not log the PII)."""

    kind: str
    start: int
    end: int
    text: str = field(repr=False)


class ScrubResult(NamedTuple):
    """The scrubbed text and how many spans each detector replaced (every detector,
    in ``DETECTOR_ORDER``, zero included); unpacks as ``text, counts``."""

    text: str
    counts: dict[str, int]


# --- secrets ---------------------------------------------------------------

_PEM_RE = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    # base64 lines and "Name: value" headers, possessive: no backtracking into the body
    r"(?:[A-Za-z0-9+/=\s]|[A-Za-z-]{1,40}:[^\n]{0,200}\n)*+"
    r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?"
)
_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|xox[abeoprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key id
    r"|AIza[A-Za-z0-9_-]{35}"  # Google
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|glpat-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWT
    r")(?![A-Za-z0-9_-])"
)
_VALUE = r"[\"']?(?P<value>[A-Za-z0-9_\-+/=.~]{%d,})"
_SEP = r"[\"']?[ \t]{0,5}[:=][ \t]{0,5}"
_ASSIGNED_RE = re.compile(r"(?i)(?:key|token|secret|credentials?|auth)s?" + _SEP + _VALUE % 32)
_PASSWORD_RE = re.compile(
    r"(?i)(?:password|passwd|passphrase|pwd)" + _SEP + r"[\"']?(?P<value>[^\s\"',;]{6,})"
)
_BEARER_RE = re.compile(r"(?i)\b(?:bearer|basic)[ \t]+" + _VALUE % 16)


def _looks_random(value: str) -> bool:
    """At least two of lower/upper/digit and ≥ 3 bits of entropy per character:
    keys and hashes pass, identifiers like ``this_is_a_long_name`` do not."""
    classes = (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
    )
    if classes < 2:
        return False
    n = len(value)
    entropy = -sum(k / n * math.log2(k / n) for k in Counter(value).values())
    return entropy >= 3.0


def _secret_spans(text: str) -> Iterator[Span]:
    for m in _PEM_RE.finditer(text):
        yield m.start(), m.end()
    for m in _TOKEN_RE.finditer(text):
        if not m.group().startswith("sk-") or any(c.isdigit() for c in m.group()):
            yield m.start(), m.end()
    for pattern in (_ASSIGNED_RE, _BEARER_RE):
        for m in pattern.finditer(text):
            value = m.group("value").rstrip(".")
            if _looks_random(value):
                yield m.start("value"), m.start("value") + len(value)
    for m in _PASSWORD_RE.finditer(text):
        if not m.group("value").isalpha():  # "password: required" is prose
            yield m.start("value"), m.end("value")


# --- URLs, e-mail, IP --------------------------------------------------------

_URL_USERINFO_RE = re.compile(
    r"(?i)(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}://(?P<userinfo>[^\s/?#@\[\]<>\"']{1,512})@"
)
_EMAIL_RE = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[\w-]{1,63}\.)+[^\W\d_]{2,24}(?![\w-])")
_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?:%[\w.-]{1,32})?(?![\w:])"
)


def _url_credential_spans(text: str) -> Iterator[Span]:
    for m in _URL_USERINFO_RE.finditer(text):
        yield m.start("userinfo"), m.end("userinfo")


def _email_spans(text: str) -> Iterator[Span]:
    for m in _EMAIL_RE.finditer(text):
        yield m.start(), m.end()


def _ip_spans(text: str) -> Iterator[Span]:
    """IPv4 and IPv6 addresses that ``ipaddress`` accepts; loopback and unspecified
    addresses (127.0.0.1, ::1, 0.0.0.0, ::) say nothing about anyone and stay."""
    for m in _IPV6_RE.finditer(text):
        candidate = m.group()
        if not any(c.isdigit() for c in candidate):  # "dead::beef", "a::b"
            continue
        try:
            v6 = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        if not (v6.is_loopback or v6.is_unspecified):
            yield m.start(), m.end()
    for m in _IPV4_RE.finditer(text):
        try:
            v4 = ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        if not (v4.is_loopback or v4.is_unspecified):
            yield m.start(), m.end()


# --- IBAN, cards --------------------------------------------------------------

_IBAN_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])")
# Runs of digit groups of 3 or more joined by one space or dash (every card layout).
_DIGIT_RUN_RE = re.compile(r"(?<!\d)\d{3,}(?:[ -]\d{3,})*(?!\d)")
_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _iban_spans(text: str) -> Iterator[Span]:
    """IBANs (spaces allowed) that pass the country format and mod-97 check; the
    longest valid prefix ending on a word, so "DE89 ... 00 and" finds the IBAN."""
    for m in _IBAN_RE.finditer(text):
        candidate = m.group()
        ends = [
            i for i in range(len(candidate), 14, -1) if i == len(candidate) or candidate[i] == " "
        ]
        for end in ends:
            if stdnum_iban.is_valid(candidate[:end]):
                yield m.start(), m.start() + end
                break


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        total += _LUHN_DOUBLE[d] if i % 2 else d
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits)


def _card_spans(text: str) -> Iterator[Span]:
    """13-19 digits, spaces or dashes between groups, an issuer's first digit (2-6)
    and the Luhn check; within a longer run of groups, the longest valid window."""
    for m in _DIGIT_RUN_RE.finditer(text):
        groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", m.group())]
        i = 0
        while i < len(groups):
            found = None
            digits = ""
            for j in range(i, len(groups)):
                digits += m.group()[groups[j][0] : groups[j][1]]
                if len(digits) > 19:
                    break
                if _is_card(digits):
                    found = j
            if found is None:
                i += 1
                continue
            yield m.start() + groups[i][0], m.start() + groups[found][1]
            i = found + 1


# --- phone numbers ------------------------------------------------------------

# Digit-dense stretches (6 or more digits, short separators): the only places the
# phone library is asked to look, with some context on both sides.
_PHONE_CLUSTER_RE = re.compile(r"\d(?:[ \t.\-/()]{0,3}\d){5,}")
_PHONE_CONTEXT = 32


def _phone_windows(text: str) -> Iterator[Span]:
    start = end = -1
    for m in _PHONE_CLUSTER_RE.finditer(text):
        lo, hi = max(0, m.start() - _PHONE_CONTEXT), min(len(text), m.end() + _PHONE_CONTEXT)
        if lo > end:
            if end >= 0:
                yield start, end
            start = lo
        end = max(end, hi)
    if end >= 0:
        yield start, end


# --- the scrubber ---------------------------------------------------------------


class Scrubber:
    """Replaces PII with typed placeholders; see the module docstring for the order.

    ``other_user_names``: names of the other registered users, matched case-insensitively on
    word boundaries; names shorter than ``MIN_NAME_LENGTH`` are ignored.
    ``phone_regions``: regions whose national formats are recognised (numbers
    written with ``+`` and a country code are found whatever the region).
    """

    def __init__(
        self,
        other_user_names: Iterable[str] = (),
        *,
        phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
        phone_leniency: int = Leniency.VALID,
    ) -> None:
        by_code: dict[int, str] = {}
        for region in phone_regions:
            code = phonenumbers.country_code_for_region(region.upper())
            if not code:
                raise ValueError(f"unknown phone region {region!r}")
            by_code.setdefault(code, region.upper())
        self._phone_regions = tuple(by_code.values())
        self._phone_leniency = phone_leniency
        self._names_re = _names_pattern(other_user_names)
        spans: dict[str, Callable[[str], Iterable[Span]]] = {
            "secret": _secret_spans,
            "url_credentials": _url_credential_spans,
            "email": _email_spans,
            "ip": _ip_spans,
            "iban": _iban_spans,
            "card": _card_spans,
            "phone": self._phone_spans,
            "name": self._name_spans,
        }
        self._detectors = [(kind, spans[kind]) for kind in DETECTOR_ORDER]

    def scrub(self, text: str) -> ScrubResult:
        counts = dict.fromkeys(DETECTOR_ORDER, 0)
        for kind, detect in self._detectors:
            spans = _select(detect(text), _placeholder_spans(text))
            if spans:
                text = _replace(text, spans, PLACEHOLDERS[kind])
                counts[kind] = len(spans)
        return ScrubResult(text, counts)

    def find(self, text: str) -> list[Finding]:
        """What the detectors still see in ``text`` (placeholders excluded); where two
        detectors overlap, the one that runs first reports it."""
        taken = _placeholder_spans(text)
        found: list[Finding] = []
        for kind, detect in self._detectors:
            spans = _select(detect(text), taken)
            found += [Finding(kind, s, e, text[s:e]) for s, e in spans]
            taken = sorted(taken + spans)
        return sorted(found, key=lambda f: f.start)

    def _phone_spans(self, text: str) -> Iterator[Span]:
        for lo, hi in _phone_windows(text):
            window = text[lo:hi]
            for region in self._phone_regions:
                matcher = phonenumbers.PhoneNumberMatcher(
                    window, region, leniency=self._phone_leniency, max_tries=sys.maxsize
                )
                for match in matcher:
                    yield lo + match.start, lo + match.end

    def _name_spans(self, text: str) -> Iterator[Span]:
        if self._names_re is not None:
            for m in self._names_re.finditer(text):
                yield m.start(), m.end()


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for raw in names:
        name = " ".join(raw.split())
        if len(name) >= MIN_NAME_LENGTH:
            forms.update(unicodedata.normalize(nf, name) for nf in ("NFC", "NFD"))
    if not forms:
        return None
    # Longest first, so "Anne Marie" wins over "Anne"; any whitespace between words.
    alternatives = (
        re.escape(f).replace(r"\ ", r"\s+") for f in sorted(forms, key=len, reverse=True)
    )
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def _placeholder_spans(text: str) -> list[Span]:
    return [(m.start(), m.end()) for m in _PLACEHOLDER_RE.finditer(text)]


def _select(spans: Iterable[Span], taken: list[Span]) -> list[Span]:
    """Non-overlapping spans, leftmost then longest first, none touching ``taken``
    (sorted, non-overlapping)."""
    chosen: list[Span] = []
    for start, end in sorted(set(spans), key=lambda s: (s[0], -s[1])):
        if start >= end or (chosen and start < chosen[-1][1]):
            continue
        i = bisect_left(taken, (start, start))
        if (i < len(taken) and taken[i][0] < end) or (i > 0 and taken[i - 1][1] > start):
            continue
        chosen.append((start, end))
    return chosen


def _replace(text: str, spans: list[Span], placeholder: str) -> str:
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts += (text[last:start], placeholder)
        last = end
    parts.append(text[last:])
    return "".join(parts)
