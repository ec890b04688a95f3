"""Profile -> directives and budgets: explicit wins, inferred needs enough evidence."""

from __future__ import annotations

from mongars.persona.steering import Preferences, ProfileData, steer
from mongars.persona.style import Style, measure
from mongars.settings import PersonaSettings

CFG = PersonaSettings(min_observations=3, terse_max_tokens=64, technical_temperature=0.3)


def profile_from(messages: list[str], prefs: Preferences | None = None) -> ProfileData:
    style = Style()
    for text in messages:
        style = style.observed(measure(text), CFG.ema_alpha)
    return ProfileData(1, prefs or Preferences(), style)


def test_empty_profile_changes_nothing() -> None:
    s = steer(ProfileData(1), CFG, 256, 0.7)
    assert s.directives == [] and s.instructions is None
    assert (s.max_tokens, s.temperature) == (256, 0.7)
    assert s.record["directives"] == [] and s.record["budgets"] == {}


def test_inferred_values_wait_for_min_observations() -> None:
    two = steer(profile_from(["Capital of France?", "Why?"]), CFG, 256, 0.7)
    assert two.directives == [] and two.max_tokens == 256
    three = steer(profile_from(["Capital of France?", "Why?", "Largest ocean?"]), CFG, 256, 0.7)
    assert "Keep answers short: one or two sentences." in three.directives
    assert three.max_tokens == 64
    budget = three.record["budgets"]["max_tokens"]
    assert budget["value"] == 64 and budget["base"] == 256
    assert budget["from"]["source"] == "inferred"
    assert budget["from"]["metric"] == "words_per_message"
    assert budget["from"]["observations"] == 3 and budget["from"]["confidence"] == 0.5


def test_explicit_preference_beats_inferred() -> None:
    terse = ["Capital of France?", "Why?", "Largest ocean?", "Tallest peak?"]
    s = steer(profile_from(terse, Preferences(verbosity="detailed")), CFG, 256, 0.7)
    assert s.max_tokens == 256
    assert "Give detailed answers: explain your reasoning and give examples." in s.directives
    (verbosity,) = [d for d in s.record["directives"] if d["from"]["field"] == "verbosity"]
    assert verbosity["from"] == {"field": "verbosity", "value": "detailed", "source": "explicit"}


def test_french_formal_technical_user() -> None:
    messages = [
        "Bonjour, pourriez-vous m'expliquer comment configurer le serveur Python avec Docker ?",
        "Merci de m'indiquer comment déboguer une fonction dans le script du serveur.",
        "Pourriez-vous me dire pourquoi la requête SQL est lente sur la base PostgreSQL ?",
    ]
    s = steer(profile_from(messages), CFG, 256, 0.7)
    assert s.directives[0] == "Answer in French."
    assert "Use a formal register." in s.directives
    assert "The user is technical: use precise technical terms." in s.directives
    assert s.temperature == 0.3 and s.record["budgets"]["temperature"]["base"] == 0.7
    lang = s.record["directives"][0]["from"]
    assert lang["source"] == "inferred" and lang["value"] == "fr" and lang["observations"] == 3


def test_explicit_everything_and_instructions() -> None:
    prefs = Preferences(
        persona="You are Ada, a patient tutor.", tone="casual", language="de", emoji=False
    )
    s = steer(ProfileData(1, prefs), CFG, 256, 0.7)
    assert s.instructions == "You are Ada, a patient tutor."
    assert s.directives == [
        "Answer in German.",
        "Use a casual, relaxed register.",
        "Do not use emoji.",
    ]
    assert s.record["instructions"] == {"source": "explicit", "chars": 29}
    # a neutral tone or normal verbosity adds nothing
    plain = steer(ProfileData(1, Preferences(tone="neutral", verbosity="normal")), CFG, 256, 0.7)
    assert plain.directives == []


def test_budgets_never_raise_the_configured_limits() -> None:
    prefs = Preferences(verbosity="terse")
    s = steer(ProfileData(1, prefs), CFG, 32, 0.1)
    assert s.max_tokens == 32 and "max_tokens" not in s.record["budgets"]
