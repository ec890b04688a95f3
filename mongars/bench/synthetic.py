"""Deterministic synthetic chat memories for scale benchmarks.

Each memory is one exchange, "User: ...\\nAssistant: ...", built from sentence
templates filled with names, places, activities, times and things; things come
from a lexicon of some 15,000 English words (the embedding model's whole-word
vocabulary, roughly in frequency order) drawn with a Zipf-like skew, so a few
words are common and most are rare, as in real chat. Sentences
come from two pools (user side, assistant side); a memory pairs one of each, so
100,000 memories are nearly all distinct while only the pools need embedding:
a memory's vector is the token-weighted mean of its two sentences' embeddings,
renormalised (what mean pooling over the concatenation approximates).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import numpy as np

NAMES = """Ana Ben Chloe Dev Elena Farid Grace Hugo Iris Jonas Kemal Lea Malik Nora Omar Priya
Quinn Rosa Sami Tara Ugo Vera Wen Xavier Yara Zoe Marco Lucia Ines Pavel""".split()
PLACES = """Lisbon, Kyoto, the lake, the office, Montreal, the market, the gym, Oslo, the beach,
the farm, Nairobi, the library, Berlin, the hospital, Lima, the mountains, the old town,
Seoul, the garden, Marseille, the station, the museum, Quebec, the harbour, Prague,
the campsite, Dakar, the bakery""".replace("\n", " ").split(", ")
THINGS = """bike, guitar, laptop, garden, sourdough bread, novel, tax return, passport, camera,
kayak, violin, budget spreadsheet, marathon plan, job interview, thesis chapter,
apartment lease, vaccination record, wedding speech, birthday cake, telescope, chess set,
drone, herb garden, sewing machine, podcast episode, pottery wheel, resume, car insurance,
mortgage plan, watercolor set, electric scooter, recipe book, yoga mat, bird feeder,
aquarium, sketchbook""".replace("\n", " ").split(", ")
ACTIVITIES = """running painting baking hiking coding climbing swimming reading gardening
knitting cycling journaling meditating dancing fishing volunteering photography woodworking
birdwatching skiing surfing tutoring composting camping""".split()
TIMES = """yesterday, last week, last month, this morning, on Sunday, two days ago, in March,
in the summer, after work, before the holidays, last year, on my birthday""".replace(
    "\n", " "
).split(", ")
FEELINGS = """excited nervous proud tired relieved curious frustrated grateful calm
overwhelmed hopeful""".split()
RELATIONS = "sister brother mother father friend neighbour colleague partner cousin boss".split()

USER_TEMPLATES = [
    "I finally fixed my {thing} {time} and I feel {feeling}.",
    "My {relation} {name} wants to go {activity} in {place} with me.",
    "Can you remind me what I said about the {thing}?",
    "I started {activity} {time}, it's harder than I expected.",
    "We moved the {thing} to {place} because {name} needed space.",
    "I spent {n} euros on a new {thing} {time}.",
    "{name} told me {time} that the {thing} was broken again.",
    "How long should I keep {activity} every week to get better?",
    "I'm {feeling} about the trip to {place} with my {relation}.",
    "I lost my {thing} somewhere near {place} {time}.",
    "My doctor said {activity} would help with my back.",
    "Do you think {name} would like a {thing} for her birthday?",
    "I have been {activity} for {n} years now.",
    "The meeting at {place} got moved, I'm {feeling}.",
    "I need a plan for the {thing} before {name} arrives.",
]
ASSISTANT_TEMPLATES = [
    "That sounds great. {activity} in {place} is a lovely idea.",
    "You mentioned the {thing} {time}; {name} was going to help with it.",
    "It is normal to feel {feeling}; start small with {activity} twice a week.",
    "I would write down where you last used the {thing} and retrace the steps.",
    "A {thing} is a thoughtful gift, especially if {name} enjoys {activity}.",
    "{n} minutes a day of {activity} is a good start for most people.",
    "Keep the receipt for the {thing} in case it breaks again.",
    "Ask your {relation} to check {place} before you buy a new one.",
    "Plan the trip to {place} around the weather and book early.",
    "Congratulations on the {thing}! You should be {feeling} about it.",
    "Try {activity} with {name}; doing it together helps you keep going.",
    "Set a reminder to review the {thing} every {n} days.",
]


class Lexicon:
    """Whole words of a WordPiece vocabulary, drawn with weight 1 / (rank + 10)."""

    def __init__(self, vocab: dict[str, int]) -> None:
        words = sorted((i, w) for w, i in vocab.items() if i >= 2000 and w.isalpha())
        self.words = [w for _, w in words if len(w) >= 4][300:]  # past the function words
        self.cumulative = list(itertools.accumulate(1 / (r + 10) for r in range(len(self.words))))

    def draw(self, rng: random.Random) -> str:
        return rng.choices(self.words, cum_weights=self.cumulative)[0]


def _skewed(rng: random.Random, items: Sequence[str]) -> str:
    # a Zipf-like choice: the first items come up far more often than the last
    return items[min(len(items) - 1, int(rng.paretovariate(1.2)) - 1)]


def _fill(rng: random.Random, template: str, lexicon: Lexicon) -> str:
    thing = _skewed(rng, THINGS) if rng.random() < 0.3 else lexicon.draw(rng)
    return template.format(
        name=_skewed(rng, NAMES),
        place=_skewed(rng, PLACES),
        thing=thing,
        activity=_skewed(rng, ACTIVITIES),
        time=rng.choice(TIMES),
        feeling=rng.choice(FEELINGS),
        relation=rng.choice(RELATIONS),
        n=rng.randint(2, 90),
    )


def sentence_pools(size: int, lexicon: Lexicon, seed: int = 7) -> tuple[list[str], list[str]]:
    """``size`` distinct user sentences and assistant sentences."""
    rng = random.Random(seed)
    pools: list[list[str]] = []
    for templates in (USER_TEMPLATES, ASSISTANT_TEMPLATES):
        seen: dict[str, None] = {}
        while len(seen) < size:
            seen.setdefault(_fill(rng, rng.choice(templates), lexicon), None)
        pools.append(list(seen))
    return pools[0], pools[1]


def pairs(count: int, size: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [(rng.randrange(size), rng.randrange(size)) for _ in range(count)]


def memory_text(user: str, assistant: str) -> str:
    return f"User: {user}\nAssistant: {assistant}"


def composed_vectors(
    chosen: Sequence[tuple[int, int]],
    user_vecs: np.ndarray,
    assistant_vecs: np.ndarray,
    user_len: np.ndarray,
    assistant_len: np.ndarray,
) -> np.ndarray:
    u = np.asarray([c[0] for c in chosen])
    a = np.asarray([c[1] for c in chosen])
    wu, wa = user_len[u][:, None], assistant_len[a][:, None]
    mixed = (user_vecs[u] * wu + assistant_vecs[a] * wa) / (wu + wa)
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def queries(count: int, lexicon: Lexicon, seed: int = 11) -> list[str]:
    """``count`` distinct questions a user might ask about such memories."""
    rng = random.Random(seed)
    forms = [
        "what did I say about my {thing}?",
        "when did I go {activity} with {name}?",
        "where did I lose the {thing}?",
        "who wanted to go to {place}?",
        "how much did I spend on the {thing}?",
        "what does my {relation} think about {activity}?",
    ]
    asked: dict[str, None] = {}
    while len(asked) < count:
        asked.setdefault(_fill(rng, rng.choice(forms), lexicon), None)
    return list(asked)
