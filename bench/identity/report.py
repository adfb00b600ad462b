"""The identity accuracy benchmark's printed table and JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.identity.accuracy import TARGETS


def _pct(value: float) -> str:
    return f"{value:.2%}"


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("people (truth)", f"{r['people']:,}"),
        ("touchpoints sent", f"{r['touchpoints']:,}"),
        ("lost: rejected whole at validation", f"{r['lost_at_validation']:,}"),
        ("lost: not filed by identity", f"{r['lost_at_filing']:,}"),
        ("customers registered", f"{r['customers_registered']:,}"),
        ("customers now (after merges)", f"{r['customers_resolved']:,}"),
        ("automatic merges", f"{r['automatic_merges']:,}"),
        ("merge rate (merges / registered)", _pct(r["merge_rate"])),
        ("merge candidates proposed", f"{r['candidates_proposed']:,}"),
        (f"pairwise precision (target {TARGETS['precision']:.1%})", _pct(r["precision"])),
        ("pairwise recall, all true pairs", _pct(r["recall"])),
        (
            f"recall, linkable pairs (target {TARGETS['linkable_recall']:.0%})",
            _pct(r["linkable_recall"]),
        ),
        ("customers per person, all touchpoints", f"{r['customers_per_person']:.2f}"),
        ("people split into several customers", _pct(r["people_split"])),
        ("customers per person, linkable touchpoints", f"{r['linkable_customers_per_person']:.2f}"),
        ("  least the evidence allows", f"{r['linkable_customers_per_person_best']:.2f}"),
        (
            f"customers per linkable group (target ≤ {TARGETS['customers_per_linkable_group']})",
            f"{r['customers_per_linkable_group']:.2f}",
        ),
        ("people per customer, mean", f"{r['people_per_customer']:.2f}"),
        ("people per customer, max", f"{r['max_people_per_customer']:,}"),
        ("customers holding several people", f"{r['customers_with_several_people']:,}"),
        (
            "  through a placeholder or hub (target 0)",
            f"{r['customers_through_placeholder_or_hub']:,}",
        ),
        ("filings per second (SQLite file)", f"{r['filings_per_s']:,.0f}"),
    ]


def hazard_table(hazards: dict[str, dict[str, Any]]) -> str:
    header = (
        f"{'hazard':<22}{'touchpts':>9}{'lost':>6}{'precision':>10}{'recall':>8}"
        f"{'linkable':>9}{'wrong pairs':>12}{'missed link.':>13}"
    )
    rows = [header]
    for name, h in sorted(hazards.items(), key=lambda item: -item[1]["touchpoints"]):
        wrong = h["predicted_pairs"] - h["correct_pairs"]
        missed = h["linkable_pairs"] - h["found_linkable_pairs"]
        rows.append(
            f"{name:<22}{h['touchpoints']:>9,}{h['lost']:>6,}{h['precision']:>10.1%}"
            f"{h['recall']:>8.1%}{h['linkable_recall']:>9.1%}{wrong:>12,}{missed:>13,}"
        )
    return "\n".join(rows)


def causes_line(causes: dict[str, Any]) -> str:
    """What the several-people customers' people share (fusions.py): customers needing each
    cause to connect their people, and in brackets those needing it alone."""
    if not causes["customers"]:
        return "several-people customers by cause: none"
    alone = causes["alone"]
    parts = [f"{c} {n} ({alone.get(c, 0)})" for c, n in causes["needing"].items()]
    return "several-people customers by cause, needing it (alone): " + ", ".join(parts)


def missed_table(missed: dict[str, Any]) -> str:
    """The missed linkable pairs by what split them off (misses.py): the largest classes, then
    the pairs by hazard and by the identifier that would have connected them."""
    if not missed["pairs"]:
        return "no linkable pair missed"
    lines = [
        f"missed linkable pairs: {missed['pairs']:,} in {missed['blocks']:,} blocks split off"
        " (hazard / evidence carried / identifier that would have connected it):"
    ]
    for c in missed["classes"]:
        lines.append(
            f"  {c['pairs']:>6,} pairs {c['blocks']:>4,} blocks  "
            f"{c['hazard']} / {c['carries']} / {c['bridge']}"
        )
    for name in ("by_hazard", "by_bridge", "device_bridged"):
        parts = ", ".join(f"{k} {n:,}" for k, n in missed[name].items())
        lines.append(f"  {name.replace('_', ' ')}: {parts}")
    return "\n".join(lines)


def worst_table(worst: list[dict[str, Any]]) -> str:
    if not worst:
        return "no customer holds more than one person"
    lines = ["customers holding the most people (the identifier most of them share; cause):"]
    for w in worst:
        lines.append(
            f"  {w['customer_id'][:40]:<40} {w['people']:>4} people {w['touchpoints']:>5} touchpoints"
            f"  {w['fused_by_kind']}: {w['fused_by']!r} ({w['people_holding_it']} people;"
            f" {'+'.join(w['causes'])})"
        )
    return "\n".join(lines)


def format_table(result: dict[str, Any]) -> str:
    rows = summary_rows(result)
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value:>10}" for label, value in rows]
    if (load := load_average()) is not None:
        lines.append("load average: {:.2f} {:.2f} {:.2f}".format(*load))
    parts = [
        "\n".join(lines),
        hazard_table(result["hazards"]),
        causes_line(result["several_people_causes"]),
        missed_table(result["missed_linkable"]),
        worst_table(result["worst_customers"]),
    ]
    return "\n\n".join(parts)


def write_json(result: dict[str, Any], out: Path) -> Path:
    """The result, with the load average it was measured under (it moves the speed figure)."""
    measured = dict(result)
    if (load := load_average()) is not None:
        measured["load_average"] = load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
    return out


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages; None where the system cannot say."""
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def default_out(result: dict[str, Any]) -> Path:
    name = (
        f"identity-seed{result['seed']}-people{result['people']}{_arrival(result.get('arrival'))}"
    )
    return Path("bench-results") / f"{name}.json"


def _arrival(arrival: str | None) -> str:
    """A file name's suffix for an arrival other than the default time order."""
    return f"-{arrival}" if arrival and arrival != "time" else ""


SEEDS_HEADER = (
    f"{'seed':>5}{'precision':>11}{'linkable recall':>17}{'cust./group':>13}"
    f"{'via hub':>9}{'wrong pairs':>13}{'missed link.':>14}{'filings/s':>11}"
    f"{'load':>7}  targets"
)


def seed_row(r: dict[str, Any]) -> str:
    """One seed's headline figures on one line (`cem bench identity --seeds`), printed as soon
    as that seed is measured, with the 1-minute load average it ended under."""
    wrong = r["predicted_pairs"] - r["correct_pairs"]
    missed = r["linkable_pairs"] - r["found_linkable_pairs"]
    load = r.get("load_average")
    shown_load = f"{load[0]:.1f}" if load else "?"
    return (
        f"{r['seed']:>5}{_pct(r['precision']):>11}{_pct(r['linkable_recall']):>17}"
        f"{r['customers_per_linkable_group']:>13.3f}"
        f"{r['customers_through_placeholder_or_hub']:>9,}{wrong:>13,}{missed:>14,}"
        f"{r['filings_per_s']:>11,.0f}{shown_load:>7}  {'met' if r['meets_targets'] else 'MISSED'}"
    )


def seeds_summary(results: list[dict[str, Any]]) -> str:
    """How many seeds met every target, and the range of each headline figure across them."""
    met = sum(bool(r["meets_targets"]) for r in results)

    def spread(key: str) -> str:
        values = [r[key] for r in results]
        return f"{_pct(min(values))}–{_pct(max(values))}"

    return (
        f"targets met on {met} of {len(results)} seeds; precision {spread('precision')} "
        f"(target {TARGETS['precision']:.1%}), linkable recall {spread('linkable_recall')} "
        f"(target {TARGETS['linkable_recall']:.0%})"
    )


def seeds_out(seeds: list[int], people: int, arrival: str = "time") -> Path:
    named = "-".join(str(seed) for seed in seeds)
    return Path("bench-results") / f"identity-seeds{named}-people{people}{_arrival(arrival)}.json"


def write_seeds_json(results: list[dict[str, Any]], out: Path) -> Path:
    """Every seed's result (each with the load averages as it ended) and the summary line."""
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"summary": seeds_summary(results), "results": results}
    out.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return out
