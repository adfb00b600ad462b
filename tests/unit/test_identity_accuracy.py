"""The identity accuracy benchmark: its scoring, and one small run through ingest and filing."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.identity import accuracy, population
from bench.identity.accuracy import customers_per_person, run_accuracy
from bench.identity.population import generate
from bench.identity.report import format_table
from bench.identity.scoring import evidence_components, pair_scores, pairs_involving, scores
from bench.identity.workload import Touch, make_people
from cem.cli import main
from schemas.envelope import CustomerRef
from services.ingest.batch import prepare
from tests.events import BUCKET_KEY


def touch(person: int, *evidence: str) -> Touch:
    return Touch(
        event_id=f"e{person}-{'-'.join(evidence)}",
        person=person,
        at=0.0,
        channel="web",
        ref=CustomerRef(anonymous_id="x"),
        evidence=frozenset(evidence),
        hazards=frozenset(),
    )


def test_pairwise_scores_of_a_perfect_clustering_are_one() -> None:
    found = pair_scores([1, 1, 2, 2, 2], ["a", "a", "b", "b", "b"])
    assert (found.true_pairs, found.predicted_pairs, found.correct_pairs) == (4, 4, 4)
    assert (found.precision, found.recall) == (1.0, 1.0)


def test_merging_everything_keeps_recall_and_loses_precision() -> None:
    found = pair_scores([1, 1, 2, 2], ["a", "a", "a", "a"])
    assert (found.precision, found.recall) == (2 / 6, 1.0)


def test_scores_need_one_label_per_item() -> None:
    with pytest.raises(ValueError, match="same items"):
        pair_scores([1, 2], ["a"])


def test_pairs_involving_a_mark_count_each_pair_once() -> None:
    # group a: 3 items, one marked -> pairs (0,1), (0,2); group b: 2 unmarked -> none
    assert pairs_involving(["a", "a", "a", "b", "b"], [True, False, False, False, False]) == 2
    assert pairs_involving(["a", "a", "a"], [True, True, True]) == 3


def test_scores_of_a_hazard_count_the_pairs_it_takes_part_in() -> None:
    persons = [1, 1, 2, 3]
    predicted = ["c1", "c2", "c1", "c3"]  # person 1 split; person 2 fused into c1
    components = [0, 0, 2, 3]
    marked = [False, False, True, False]  # the fused touchpoint carries the hazard
    found = scores(persons, predicted, components, marked)
    assert (found.predicted_pairs, found.correct_pairs) == (1, 0)
    assert found.precision == 0.0 and found.linkable_pairs == 0
    whole = scores(persons, predicted, components, [True] * 4)
    assert (whole.true_pairs, whole.found_pairs, whole.linkable_recall) == (1, 0, 0.0)


def test_touchpoints_of_one_person_link_through_identifiers_only_they_use() -> None:
    events = [
        touch(1, "email:a"),
        touch(1, "email:a", "phone:1"),
        touch(1, "phone:1"),
        touch(1, "device:d"),  # nothing in common with the others
        touch(2, "phone:2"),  # someone else's number ...
        touch(2, "tablet:t", "phone:2"),
        touch(1, "tablet:t"),  # ... and a tablet they share with person 1
    ]
    components = evidence_components(events)
    assert components[0] == components[1] == components[2]
    assert components[4] == components[5]
    assert len({components[0], components[3], components[4], components[6]}) == 4


def sent(person: int, index: int, *evidence: str) -> population.Touch:
    return population.Touch(
        event_id=f"e{person}-{index}",
        person=person,
        day=float(index),
        channel="web",
        event={},
        evidence=frozenset(evidence),
        carried=frozenset(evidence),
        hazards=frozenset(),
        spelled=(),
    )


def test_customers_per_person_count_only_groups_that_name_someone() -> None:
    touches = [
        sent(1, 0, "email:a"),
        sent(1, 1, "email:a", "cookie:k"),
        sent(1, 2, "cookie:k"),  # linked through the cookie to the email group
        sent(1, 3, "cookie:fresh"),  # a cleared cookie, visited twice, nothing else
        sent(1, 4, "cookie:fresh"),
        sent(1, 5, "email:work"),  # used once: links to nothing
    ]
    customers = ["c1", "c2", "c2", "c3", "c3", "c4"]
    found = customers_per_person(touches, customers, evidence_components(touches))
    assert found["customers_per_person"] == 4
    assert found["linkable_customers_per_person"] == 2  # c1 and c2 hold the email group
    assert found["linkable_customers_per_person_best"] == 1
    assert found["customers_per_linkable_group"] == 2


def test_the_workload_has_unique_identifiers_except_what_households_share() -> None:
    people = make_people(500, random.Random(3))
    emails = [e for p in people for e in p.emails]
    assert len(emails) == len(set(emails))
    landlines = Counter(p.landline for p in people if p.landline)
    assert landlines and min(landlines.values()) >= 2


def test_a_small_run_is_scored_from_what_ingest_and_filing_made_of_it() -> None:
    result = run_accuracy(150, seed=11)
    touches = generate(150, 11)
    prepared = prepare(
        [t.event for t in touches],
        "bench",
        touches[-1].at + timedelta(hours=1),
        65536,
        bucket_key=BUCKET_KEY,
    )
    assert result["touchpoints"] == len(touches)
    assert result["lost_at_validation"] == len(prepared.rejected)  # none since issue 12 part 2
    assert result["lost_at_filing"] == 0
    assert 0 < result["customers_resolved"] <= result["customers_registered"]
    assert 0.0 < result["precision"] <= 1.0 and 0.0 < result["linkable_recall"] <= 1.0
    assert result["customers_per_person"] >= 1.0
    assert result["max_people_per_customer"] >= 1
    assert result["hazards"]["placeholder_email"]["touchpoints"] > 0
    causes = result["several_people_causes"]
    assert causes["customers"] == result["customers_with_several_people"]
    assert result["customers_through_placeholder_or_hub"] == causes["through_placeholder_or_hub"]
    assert result["customers_through_placeholder_or_hub"] <= causes["customers"]
    assert all(w["causes"] for w in result["worst_customers"])
    missed = result["missed_linkable"]
    assert missed["pairs"] == result["linkable_pairs"] - result["found_linkable_pairs"]
    assert sum(missed["by_hazard"].values()) == missed["pairs"]
    assert sum(missed["by_bridge"].values()) == missed["pairs"]
    table = format_table(result)
    assert "pairwise precision" in table and "shared_landline" in table
    assert "through a placeholder or hub" in table and "by cause" in table
    assert "missed linkable pairs" in table or "no linkable pair missed" in table


@pytest.mark.parametrize("arrival", ["live", "backlog"])
def test_touchpoints_polled_from_the_partitions_are_each_filed_once_out_of_time_order(
    arrival: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = accuracy.IdentityFiler.file

    def recording(self: Any, events: Any) -> Any:
        seen.extend(str(e.event_id) for e in events)
        return original(self, events)

    monkeypatch.setattr(accuracy.IdentityFiler, "file", recording)
    monkeypatch.setattr(accuracy, "BATCH", 100)
    result = run_accuracy(150, seed=11, arrival=arrival)
    in_time = [t.event_id for t in generate(150, 11)]
    assert result["arrival"] == arrival and result["lost_at_filing"] == 0
    assert sorted(seen) == sorted(in_time) and seen != in_time
    if arrival == "live":  # each request's records are filed before the next request's
        for start in range(0, len(in_time), 100):
            assert set(seen[start : start + 100]) == set(in_time[start : start + 100])
    else:  # the queue is polled 5,000 at a time: 150 people's touchpoints in one poll
        assert len(in_time) < accuracy.FILING_POLL
        assert seen[:100] != in_time[:100]


def test_an_unknown_arrival_is_refused() -> None:
    with pytest.raises(ValueError, match="arrival 'random' is not one of time, live, backlog"):
        run_accuracy(10, seed=1, arrival="random")


def test_the_cli_prints_the_table_and_writes_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "identity.json"
    code = main(["bench", "identity", "--people", "80", "--seed", "2", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["people"] == 80 and written["seed"] == 2 and "load_average" in written
    assert code == (0 if written["meets_targets"] else 1)
    printed = capsys.readouterr().out
    assert "customers per linkable group" in printed and str(out) in printed


def test_several_seeds_print_a_line_each_and_on_how_many_the_targets_were_met(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "seeds.json"
    code = main(["bench", "identity", "--people", "60", "--seeds", "2,3", "--out", str(out)])
    written = json.loads(out.read_text())
    results = written["results"]
    assert [r["seed"] for r in results] == [2, 3]
    assert all(r["people"] == 60 and len(r["load_average"]) == 3 for r in results)
    met = sum(bool(r["meets_targets"]) for r in results)
    assert code == (0 if met == 2 else 1)
    assert written["summary"].startswith(f"targets met on {met} of 2 seeds")
    printed = capsys.readouterr().out.splitlines()
    rows = [line for line in printed if line.split()[:1] in (["2"], ["3"])]
    assert len(rows) == 2
    for row, result in zip(rows, results, strict=True):
        wrong = result["predicted_pairs"] - result["correct_pairs"]
        assert f"{result['precision']:.2%}" in row and f"{wrong:,}" in row
        assert row.endswith("met" if result["meets_targets"] else "MISSED")


def test_seeds_that_are_not_numbers_or_repeat_are_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = (
        (["--seeds", "5,x"], "'x' is not one"),
        (["--seeds", "5,"], "'' is not one"),
        (["--seeds", ""], "'' is not one"),
        (["--seeds", "5,5"], "names a seed twice"),
        (["--seed", "3", "--seeds", "2"], "not both"),
    )
    for given, said in cases:
        assert main(["bench", "identity", "--people", "60", *given]) == 2  # not a miss (1)
        error = capsys.readouterr().err
        assert said in error and "Traceback" not in error
