"""LoCoMo's answer scoring (snap-research/locomo ``task_eval/evaluation.py``), re-implemented.

Rules followed: an answer is normalised (commas dropped, lower case, punctuation
removed, the words a/an/the/and removed, whitespace collapsed), its words are
Porter-stemmed (NLTK), and scored by token-overlap F1 against the gold answer.
Category 1 (multi-hop) uses the multi-answer F1: the gold and the prediction
are split on commas, each gold part takes its best F1 over the prediction's
parts, and the parts are averaged. Categories 2-4 use plain F1; for category 3
the gold answer is its first ``;``-separated alternative. Category 5
(adversarial) is not scored here.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import cache

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_PUNCTUATION = set(string.punctuation)


@cache
def _stemmer() -> object:
    from nltk.stem import PorterStemmer

    return PorterStemmer()


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.replace(",", "").lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _tokens(text: str) -> list[str]:
    stem = _stemmer().stem  # type: ignore[attr-defined]
    return [stem(w) for w in normalize_answer(text).split()]


def f1_score(prediction: str, gold: str) -> float:
    predicted, expected = _tokens(prediction), _tokens(gold)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def multi_answer_f1(prediction: str, gold: str) -> float:
    predictions = [p.strip() for p in prediction.split(",")]
    golds = [g.strip() for g in gold.split(",")]
    return sum(max(f1_score(p, g) for p in predictions) for g in golds) / len(golds)


def score(category: int, prediction: str, gold: str) -> float:
    if category == 1:
        return multi_answer_f1(prediction, gold)
    if category == 3:
        gold = gold.split(";")[0].strip()
    return f1_score(prediction, gold)
