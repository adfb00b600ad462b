"""`cem bench sentiment --candidate MODULE:FUNCTION`: a sentiment model that is not wired in,
measured by the bench's own code on the labelled texts of one language (default Spanish).

FUNCTION takes a text and returns its label (negative, neutral or positive). It scores the texts
the platform detects in the candidate's language and the platform's scorer scores the others, as
the pipeline would if the candidate were wired in; the report is the bench's (accuracy, macro-F1,
confusion, cost per text) plus what loading costs: the import and a first call, timed apart, and
the peak memory they add. The rule for a fair measure is the bench's: the labelled set is a test
set, so a candidate's thresholds come from its documentation or a principle fixed beforehand.

A candidate whose package does not install beside cem's (other pins, another Python) is measured
from its own environment, which needs only langdetect and vaderSentiment besides it:
`PYTHONPATH=/path/to/cem python -m bench.sentiment_candidate MODULE:FUNCTION`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.sentiment import (
    DEFAULT_DATA,
    GOAL_MACRO_F1,
    Scorer,
    evaluate_language,
    format_language,
    load_labelled,
    write_json,
)
from services.satisfaction import sentiment

DEFAULT_OUT = Path("bench-results") / "sentiment-candidate.json"
_WARM_UP = {"es": "calentando el modelo", "en": "warming up the model"}

Labeller = Callable[[str], str]


def load_candidate(spec: str) -> Labeller:
    """`module:function`, imported from the running environment."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"a candidate is MODULE:FUNCTION, not {spec!r}")
    labeller: Labeller = getattr(importlib.import_module(module), name)
    return labeller


def evaluate_candidate(
    rows: list[dict[str, str]], spec: str, language: str = "es"
) -> dict[str, Any]:
    """Loads the candidate (timed, with the peak memory it adds), then scores the gold texts of
    `language` as the platform would with it wired in."""
    sentiment.warm_up()  # the platform's own models are not the candidate's loading cost
    peak_before, cpu, wall = _peak_memory_mb(), time.process_time(), time.perf_counter()
    labeller = load_candidate(spec)
    labeller(_WARM_UP.get(language, "warm up"))
    loading = {
        "load_seconds": time.perf_counter() - wall,
        "load_cpu_seconds": time.process_time() - cpu,
        "load_peak_memory_added_mb": _peak_memory_mb() - peak_before,
    }
    sentiment.forget_scores()
    subset = [row for row in rows if row["language"] == language]
    result = evaluate_language(subset, routed(labeller, spec, language))
    return {
        "candidate": spec,
        "language": language,
        **loading,
        **result,
        "goal_macro_f1": GOAL_MACRO_F1,
        "meets_goal": result["macro_f1"] >= GOAL_MACRO_F1,
    }


def routed(labeller: Labeller, spec: str, language: str) -> Scorer:
    """The candidate for texts detected in its language, the platform's scorer for the rest."""
    version = f"{_version(spec)}; candidate"

    def score(text: str) -> sentiment.Sentiment:
        text = text[: sentiment.MAX_CHARS]
        if sentiment.detect_language(text) != language:
            return sentiment.score(text)
        label = labeller(text)
        if label not in sentiment.LABELS:
            raise ValueError(f"{spec} labelled a text {label!r}, not one of {sentiment.LABELS}")
        # A candidate gives a label only; the bench measures labels.
        return sentiment.Sentiment(language, label, 0.0, spec, version)

    return score


def format_candidate_report(results: dict[str, Any]) -> str:
    lines = [
        f"candidate {results['candidate']}: loading {results['load_seconds']:.2f} s "
        f"({results['load_cpu_seconds']:.2f} s CPU), "
        f"peak memory +{results['load_peak_memory_added_mb']:.0f} MB",
    ]
    lines += format_language(results["language"], results, "candidate, not wired in")
    return "\n".join(lines)


def main(spec: str, language: str = "es", data: Path | None = None, out: Path | None = None) -> int:
    results = evaluate_candidate(load_labelled(data or DEFAULT_DATA), spec, language)
    print(format_candidate_report(results))
    print(f"\nresults: {write_json(results, out or DEFAULT_OUT)}")
    return 0 if results["meets_goal"] else 1


def _version(spec: str) -> str:
    """The version of the distribution that provides the candidate's top-level package."""
    top = spec.partition(":")[0].partition(".")[0]
    for distribution in importlib.metadata.packages_distributions().get(top, []):
        return f"{distribution} {importlib.metadata.version(distribution)}"
    return "unversioned"


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    cli.add_argument("candidate", help="MODULE:FUNCTION taking a text, returning its label")
    cli.add_argument("--language", default="es", help="the candidate's language (default es)")
    cli.add_argument("--data", type=Path, help="labelled CSV (default tests/data/sentiment/)")
    cli.add_argument("--out", type=Path, help=f"JSON results (default {DEFAULT_OUT})")
    args = cli.parse_args()
    raise SystemExit(main(args.candidate, args.language, args.data, args.out))
