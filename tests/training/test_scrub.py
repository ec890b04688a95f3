"""The PII scrubber: each detector finds what it should, leaves what it should not,
and scrubbed text holds nothing any detector still sees."""

from __future__ import annotations

import pytest

from mongars.training.scrub import (
    DETECTOR_ORDER,
    PLACEHOLDERS,
    SCRUBBER_VERSION,
    Scrubber,
)

USERS = ["Alice", "Zoé Dupont", "Łukasz", "Bo"]
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "Proc-Type: 4,ENCRYPTED\n"
    "DEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aNbu5ZUQwxFE4DRGq1hwzSFcP0G+/3dnvHnGbQ==\n"
    "-----END RSA PRIVATE KEY-----"
)

# (text, the PII in it, the detector that must replace it)
POSITIVE = [
    ("write to alice.smith+work@example.co.uk today", "alice.smith+work@example.co.uk", "email"),
    ("écris à josé@exemple.fr", "josé@exemple.fr", "email"),
    ("call me at +1 415-555-2671", "415-555-2671", "phone"),
    ("US office (415) 555-2671, ask for Bob", "555-2671", "phone"),
    ("appelle-moi au 06 12 34 56 78 ce soir", "06 12 34 56 78", "phone"),
    ("London: 020 7946 0958", "7946 0958", "phone"),
    ("Berlin +49 30 901820", "901820", "phone"),
    ("server at 192.168.1.10.", "192.168.1.10", "ip"),
    ("ping 8.8.8.8 then", "8.8.8.8", "ip"),
    ("v6 2001:db8::8a2e:370:7334 here", "2001:db8::8a2e:370:7334", "ip"),
    ("link-local fe80::1%eth0", "fe80::1", "ip"),
    ("mapped ::ffff:192.0.2.1 too", "192.0.2.1", "ip"),
    ("pay with 4111 1111 1111 1111 please", "4111 1111 1111 1111", "card"),
    ("card 5555-5555-5555-4444 exp 12/25", "5555-5555-5555-4444", "card"),
    ("amex 3782 822463 10005", "822463", "card"),
    ("no separators 4532015112830366", "4532015112830366", "card"),
    ("card 4111 1111 1111 1111 2025 0000", "4111 1111 1111 1111", "card"),
    ("IBAN DE89 3704 0044 0532 0130 00 and more", "3704 0044 0532", "iban"),
    ("iban: GB82WEST12345698765432", "GB82WEST12345698765432", "iban"),
    ("fr76 3000 6000 0112 3456 7890 189 (lowercase)", "3000 6000 0112", "iban"),
    ("clone http://user:pw@host/x now", "user:pw", "url_credentials"),
    ("ftp://anonymous@files.example.org/pub", "anonymous", "url_credentials"),
    ("OPENAI_KEY is sk-proj-abc123DEF456ghi789JKL012mno", "abc123DEF456", "secret"),
    ("token ghp_" + "a1B2" * 9 + " leaked", "ghp_", "secret"),
    ("github_pat_11ABCDEFG0abcdefghijklmnopqrstuvwxyz", "github_pat_", "secret"),
    ("slack xoxb-1234567890-abcdefghij", "xoxb-", "secret"),
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "secret"),
    ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSy", "secret"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_", "secret"),
    (f"Authorization: Bearer {JWT}", "eyJhbGci", "secret"),
    (f"here is my key:\n{PEM}\nthanks", "MIIEowIBAAKCAQEA", "secret"),
    ("api_key = 'f3a9c2e1b7d84a6f9e0c1d2b3a4f5e6d'", "f3a9c2e1b7d84a6f9e0c1d2b3a4f5e6d", "secret"),
    ('{"access_token": "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg"}', "Zm9vYmFy", "secret"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUt", "secret"),
    ("db password=hunter22 in prod", "hunter22", "secret"),
    ("Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456", "secret"),
    ("Alice said hi", "Alice", "name"),
    ("ask ALICE, or alice's friend", "ALICE", "name"),
    ("c'est zoé   dupont!", "zoé", "name"),
    ("cześć Łukaszu? no: ŁUKASZ.", "ŁUKASZ", "name"),
]

# Text no detector should touch.
NEGATIVE = [
    "",
    "version 3.14.15 of the library",
    "released 2024-01-15 at 10:30:45, or 15/01/2024",
    "a time 12:30:45 and a ratio 3:2",
    "std::vector and a::b and dead::beef",
    "loopback 127.0.0.1, ::1 and 0.0.0.0 stay",
    "999.1.2.3 is not an address, 1.2.3.4.5 neither",
    "4111 1111 1111 1112 fails Luhn",
    "order 1234567812345678 fails Luhn",
    "ids 1111 2222 3333 4444 5555",
    "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum",
    "see http://host/x or https://example.com/path?q=1",
    "mailto-like user at example dot com",
    "ask-me anything; task-oriented sk-learn",
    "token: this_is_a_very_long_identifier_name_indeed",
    "key = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "password: required",
    "Bearer tokens are basic internationalization",
    "commit 3f2a9c2e1b7d84a6f9e0c1d2b3a4f5e6d7c8b9a0 fixed it",
    "Alicebank and malice and Malice are other words",
    "order 123456789, 12 apples and 3.5 pears",
    "Bo is too short to be a name to scrub",
    "Unicode: 日本語のテキスト, emoji 😀, RTL مرحبا",
]


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(other_user_names=USERS)


@pytest.mark.parametrize(("text", "pii", "kind"), POSITIVE)
def test_detector_finds_and_replaces(scrubber: Scrubber, text: str, pii: str, kind: str) -> None:
    assert kind in {f.kind for f in scrubber.find(text)}
    clean, counts = scrubber.scrub(text)
    assert counts[kind] >= 1, counts
    assert PLACEHOLDERS[kind] in clean
    assert pii not in clean
    assert scrubber.find(clean) == []
    assert scrubber.scrub(clean).text == clean  # idempotent


@pytest.mark.parametrize("text", NEGATIVE)
def test_detectors_leave_ordinary_text(scrubber: Scrubber, text: str) -> None:
    result = scrubber.scrub(text)
    assert result.text == text
    assert set(result.counts) == set(DETECTOR_ORDER)
    assert sum(result.counts.values()) == 0
    assert scrubber.find(text) == []


def test_placeholders_and_version() -> None:
    assert PLACEHOLDERS == {
        "secret": "[SECRET]",
        "url_credentials": "[URL_CREDENTIALS]",
        "email": "[EMAIL]",
        "ip": "[IP]",
        "iban": "[IBAN]",
        "card": "[CARD]",
        "phone": "[PHONE]",
        "name": "[NAME]",
    }
    assert SCRUBBER_VERSION


def test_order_decides_which_detector_claims_a_span(scrubber: Scrubber) -> None:
    # credentials in a URL are not read as an e-mail address
    clean, counts = scrubber.scrub("https://bob:s3cret@mail.example.com/inbox")
    assert clean == "https://[URL_CREDENTIALS]@mail.example.com/inbox"
    assert counts["url_credentials"] == 1 and counts["email"] == 0
    # a token as the URL's user is a secret
    clean, counts = scrubber.scrub("https://ghp_" + "x1" * 18 + "@github.com/o/r.git")
    assert clean == "https://[SECRET]@github.com/o/r.git"
    assert counts["secret"] == 1 and counts["url_credentials"] == 0
    # a card number is one [CARD], not phone numbers
    clean, counts = scrubber.scrub("4111 1111 1111 1111")
    assert clean == "[CARD]" and counts["phone"] == 0
    # a user's name inside an e-mail address goes with the address
    clean, counts = scrubber.scrub("alice@example.com")
    assert clean == "[EMAIL]" and counts["name"] == 0
    # only the assigned value of a key is replaced
    assert scrubber.scrub("api_key=f3a9c2e1b7d84a6f9e0c1d2b3a4f5e6d.").text == "api_key=[SECRET]."


def test_find_reports_kind_and_position_but_repr_hides_the_text(scrubber: Scrubber) -> None:
    text = "mail bob@example.com or 8.8.8.8"
    found = scrubber.find(text)
    assert [(f.kind, text[f.start : f.end]) for f in found] == [
        ("email", "bob@example.com"),
        ("ip", "8.8.8.8"),
    ]
    assert found[0].text == "bob@example.com"
    assert "bob@" not in repr(found)


def test_names_are_matched_on_word_boundaries_case_insensitively() -> None:
    s = Scrubber(other_user_names=["Alice", "  Anne   Marie ", "Jo", "o'brien", "email"])
    assert s.scrub("Alice, alice! ALICE? Alicebank, Malice").text == (
        "[NAME], [NAME]! [NAME]? Alicebank, Malice"
    )
    assert s.scrub("anne\nmarie and Anne Marie").text == "[NAME] and [NAME]"
    assert s.scrub("Jo and jo stay (too short)").text == "Jo and jo stay (too short)"
    assert s.scrub("O'Brien's car").text == "[NAME]'s car"
    # a user named like a placeholder never eats the placeholders
    clean, counts = s.scrub("email me at [EMAIL]")
    assert clean == "[NAME] me at [EMAIL]" and counts["name"] == 1
    assert s.find(clean) == []


def test_names_match_whatever_the_unicode_normalisation() -> None:
    s = Scrubber(other_user_names=["Zoé"])
    decomposed = "Zoe\u0301 est là"
    assert s.scrub(decomposed).text == "[NAME] est là"
    assert s.scrub("ZOÉ est là").text == "[NAME] est là"
    assert Scrubber().scrub("Zoé").text == "Zoé"  # no names given, none scrubbed


def test_phone_regions_are_configurable() -> None:
    us_only = Scrubber(phone_regions=["US"])
    assert us_only.scrub("appelle 01 23 45 67 89").text == "appelle 01 23 45 67 89"
    assert us_only.scrub("appelle +33 1 23 45 67 89").text == "appelle [PHONE]"
    assert Scrubber(phone_regions=["FR"]).scrub("appelle 01 23 45 67 89").text == (
        "appelle [PHONE]"
    )
    with pytest.raises(ValueError, match="unknown phone region"):
        Scrubber(phone_regions=["XX"])


def test_several_kinds_in_one_text(scrubber: Scrubber) -> None:
    text = (
        "Hi, I'm Alice (alice@example.com, +1 415-555-2671). My card 4111 1111 1111 1111, "
        "IBAN GB82 WEST 1234 5698 7654 32, box 203.0.113.9, repo https://me:pw@git.example.org, "
        "key sk-abc123def456ghi789jkl012mno."
    )
    clean, counts = scrubber.scrub(text)
    assert clean == (
        "Hi, I'm [NAME] ([EMAIL], [PHONE]). My card [CARD], "
        "IBAN [IBAN], box [IP], repo https://[URL_CREDENTIALS]@git.example.org, "
        "key [SECRET]."
    )
    assert counts == {
        "secret": 1,
        "url_credentials": 1,
        "email": 1,
        "ip": 1,
        "iban": 1,
        "card": 1,
        "phone": 1,
        "name": 1,
    }
    assert scrubber.find(clean) == []


def test_truncated_private_key_is_still_a_secret(scrubber: Scrubber) -> None:
    clean, counts = scrubber.scrub("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA")
    assert clean == "[SECRET]" and counts["secret"] == 1


def test_megabyte_of_text(scrubber: Scrubber) -> None:
    chunk = (
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit; Alice wrote to "
        "bob@example.com from 203.0.113.9 about version 3.14.15. " * 8
    )
    text = (chunk + "Call +1 415-555-2671.\n") * (1_000_000 // len(chunk))
    clean, counts = scrubber.scrub(text)
    n = 1_000_000 // len(chunk)
    assert counts["email"] == counts["name"] == counts["ip"] == 8 * n
    assert counts["phone"] == n
    assert "bob@" not in clean and "Alice" not in clean
    assert scrubber.find(clean) == []


# Inputs built to make a careless pattern backtrack (or a quadratic scan): each must
# finish quickly. The timeout is a guard against hanging, not a measurement.
HOSTILE_UNITS = [
    "a",
    "a_",
    "a@",
    "a@b.",
    "1:",
    "ab:",
    ":",
    "-",
    "a://",
    "key=",
    "key=aB3",
    "password=",
    "eyJ",
    "eyJa.",
    "sk-",
    "AA11 ",
    "-----BEGIN PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\nAAAA",
    "Proc-Type-",
    " \n\t",
    "éà中文😀 ",
    "Alice",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_input_is_handled(scrubber: Scrubber, unit: str) -> None:
    text = (unit * (200_000 // len(unit) + 1))[:200_000]
    clean, _ = scrubber.scrub(text)
    assert scrubber.find(clean) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["4444 ", "1 ", "1.", "4111111111111111 ", "+1 415-555-2671 "])
def test_hostile_digit_runs_are_handled(scrubber: Scrubber, unit: str) -> None:
    # The phone library reads every digit-dense stretch: linear, but slower per
    # character than the regular expressions, hence the smaller input.
    text = (unit * (20_000 // len(unit) + 1))[:20_000]
    clean, _ = scrubber.scrub(text)
    assert scrubber.find(clean) == []
