"""Sentiment of what a customer writes, in English and Spanish, offline (definition `sentiment@1`).

The language of each text is detected (langdetect, limited to English and Spanish, fixed seed),
then one model scores it, each shipped inside its registry package so nothing is downloaded at run
time (docs/metrics.md says why these):

- English: VADER (`vaderSentiment`), lexicon and rules; score = its compound score in [−1, 1];
  positive ≥ 0.05, negative ≤ −0.05 (the thresholds its authors publish).
- Spanish: `sentiment-analysis-spanish`, a naive Bayes classifier over word n-grams giving the
  probability p that a text is positive; score = 2p − 1; positive when p ≥ 2/3, negative when
  p ≤ 1/3 (its documentation reads the middle as neutral; thirds fixed before any measurement).
- A text without letters (emoji, emoticons, "!!!") has no language (`und`); VADER scores it, its
  lexicon covering emoji and emoticons.

`score` is a pure function of the text: the same text gives the same result on every run and
machine, so a replay rebuilds identical rows. The models load once per process, on first use.

The platform stores only what `trusted_score` gives: the score of a text whose language has a model
that meets the accuracy goal (macro-F1 ≥ 0.80 on `tests/data/sentiment/`, `cem bench sentiment`).
Today that is English (VADER) and texts without letters. The Spanish candidate misses the goal by
far (macro-F1 0.51: it reads most neutral questions as negative) and costs ~15 s of CPU and ~790 MB
to load, so a Spanish text is not scored in the pipeline: its touchpoint's sentiment would lean
negative for no reason. `cem bench sentiment` still measures it (`score`), so a better model can
replace it by the same measure.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import threading
import warnings
from typing import Any, NamedTuple

DEFINITION = "sentiment@1"
LABELS = ("negative", "neutral", "positive")
LANGUAGES = ("en", "es")
UNDETERMINED = "und"
OTHER = "other"  # letters of neither language (another script): no model for it, left unscored
# Longer texts are cut before detection and scoring: what a customer says first carries its tone,
# and it bounds the cost of one event (a text may be 20 000 characters).
MAX_CHARS = 2000
VADER_THRESHOLD = 0.05
SPANISH_POSITIVE_AT = 2 / 3
SPANISH_NEGATIVE_AT = 1 / 3
_DETECTOR_SEED = 0

VADER = "vaderSentiment"
SPANISH = "sentiment-analysis-spanish"
_DETECTOR = "langdetect"


class Sentiment(NamedTuple):
    language: str  # "en", "es", or "und" when the text has no letters
    label: str  # negative, neutral or positive
    score: float  # −1 (most negative) … 1 (most positive)
    model: str  # the package that scored it
    model_version: str  # its version, the detector's and this definition's


def score(text: str) -> Sentiment:
    """The sentiment of one text a customer wrote."""
    return _score(text[:MAX_CHARS])


# Short replies repeat ("ok", "gracias", "thanks!"), and scoring costs ~0.3–1 ms, mostly language
# detection; a pure function's results can be kept.
@functools.lru_cache(maxsize=4096)
def _score(text: str) -> Sentiment:
    language = _language(text)
    if language == "es":
        return _spanish(text)
    return _english(text, language)


# Languages whose model meets the accuracy goal (`cem bench sentiment`): only their texts are
# scored by the platform (`trusted_score`).
TRUSTED_LANGUAGES = frozenset({"en", UNDETERMINED})


def trusted_score(text: str) -> Sentiment | None:
    """The sentiment of one text, when its language's model meets the accuracy goal; None for a
    text in another language (today Spanish), which the platform leaves unscored."""
    text = text[:MAX_CHARS]
    if _language(text) not in TRUSTED_LANGUAGES:
        return None
    return _score(text)


def warm_up() -> None:
    """Loads the models the platform scores with now, rather than on the first text (a stream
    worker calls this before it joins its consumer group, the embedded mode in a thread at
    start). The Spanish candidate, which only the bench uses, is not loaded."""
    _detector_factory()
    _vader()


def forget_scores() -> None:
    """Empties the cache of results (a benchmark measuring the cost of scoring needs it)."""
    _score.cache_clear()
    _language.cache_clear()


@functools.lru_cache(maxsize=4096)
def _language(text: str) -> str:
    return detect_language(text)


def detect_language(text: str) -> str:
    """`en` or `es` (the only two candidates); `und` for a text without letters; `other` for
    letters neither language's profile knows (another script)."""
    if not any(ch.isalpha() for ch in text):
        return UNDETERMINED
    # The factory first: it imports langdetect under the loading lock, so this import finds
    # the module loaded (importing it beside the warm-up thread's import was a deadlock the
    # import system detected, with a traceback at start).
    detector = _detector_factory().create()
    from langdetect.lang_detect_exception import LangDetectException

    detector.append(text)
    try:
        language: str = detector.detect()
    except LangDetectException:  # letters, but no n-gram either profile knows (another script)
        return OTHER
    return language


def model_version(model: str) -> str:
    """What is stored beside each score: the model's version, the detector's and the rules'."""
    return f"{_version(model)}; {_DETECTOR} {_version(_DETECTOR)}; {DEFINITION}"


def _english(text: str, language: str) -> Sentiment:
    compound = float(_vader().polarity_scores(text)["compound"])
    if compound >= VADER_THRESHOLD:
        label = "positive"
    elif compound <= -VADER_THRESHOLD:
        label = "negative"
    else:
        label = "neutral"
    return Sentiment(language, label, round(compound, 4), VADER, model_version(VADER))


def _spanish(text: str) -> Sentiment:
    positive = _spanish_model().positive_probability(text)
    if positive >= SPANISH_POSITIVE_AT:
        label = "positive"
    elif positive <= SPANISH_NEGATIVE_AT:
        label = "negative"
    else:
        label = "neutral"
    return Sentiment("es", label, round(2 * positive - 1, 4), SPANISH, model_version(SPANISH))


class _NaiveBayes:
    """The Spanish package's classifier, applied to one text without scikit-learn's per-call
    overhead (~1 ms): the same analyzer, vocabulary and fitted log-probabilities, the same
    formula as `MultinomialNB.predict_proba` (joint log-likelihood = counts · log P(term|class) +
    log P(class), normalised); the package reads the probability of its second class."""

    def __init__(self, vectorizer: Any, classifier: Any) -> None:
        import numpy as np

        self._np = np
        self._analyze = vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = dict(vectorizer.vocabulary_)
        self._log_prob = np.asarray(classifier.feature_log_prob_, dtype=np.float64)
        self._log_prior = np.asarray(classifier.class_log_prior_, dtype=np.float64)

    def positive_probability(self, text: str) -> float:
        terms = [self._vocabulary[t] for t in self._analyze(text) if t in self._vocabulary]
        joint = self._log_prior + self._log_prob[:, terms].sum(axis=1)
        return float(self._np.exp(joint[1] - self._np.logaddexp.reduce(joint)))


@functools.cache
def _version(package: str) -> str:
    return importlib.metadata.version(package)


# Loading is slow (the Spanish model unpickles ~30 MB) and must happen once even when two
# threads score their first text together.
_LOAD = threading.Lock()


def _vader() -> Any:
    with _LOAD:
        return _load_vader()


def _spanish_model() -> _NaiveBayes:
    with _LOAD:
        return _load_spanish_model()


@functools.cache
def _load_vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@functools.cache
def _load_spanish_model() -> _NaiveBayes:
    from sentiment_analysis_spanish.sentiment_analysis import SentimentAnalysisSpanish

    with warnings.catch_warnings():
        # Pickled with scikit-learn 0.23: newer versions warn that it may not load the same.
        # `cem bench sentiment` measures what it does under the installed version instead.
        warnings.simplefilter("ignore", UserWarning)
        model = SentimentAnalysisSpanish()
    # Only the 5 000-term vocabulary is kept, not the millions of terms the vectorizer discarded
    # while fitting, which are most of the pickle's memory.
    return _NaiveBayes(model.vectorizer, model.classifier)


def _detector_factory() -> Any:
    with _LOAD:
        return _load_detector_factory()


@functools.cache
def _load_detector_factory() -> Any:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    profiles = []
    for language in LANGUAGES:
        with open(os.path.join(PROFILES_DIRECTORY, language), encoding="utf-8") as profile:
            profiles.append(profile.read())
    factory.load_json_profile(profiles)
    # langdetect samples n-grams at random; a fixed seed makes detection a function of the text.
    factory.set_seed(_DETECTOR_SEED)
    return factory
