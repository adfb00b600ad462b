"""`python -m bench.layouts`: `cem up` in one process against the filing stage in a process of its
own (`CEM_FILING_PROCESS=true`), measured back to back and alternately on the same events.

Each run starts a fresh `cem up` (bench.embedded.Server) in a scratch directory, posts the
realistic identity mix (`bench.sustained.MIXES`, identifiers as the demo population writes them)
as fast as the ingest takes it, and stops the clock when every consumer group has committed every
event (`bench.sustained.maximum`). Beside the rate it reads, from `/proc`, the CPU seconds the
server process and each of its child processes (the filing process) used during the run, and the
load average before and after. The order alternates within each pair (one-two, two-one, ...), so
a neighbour's job that comes or goes does not favour one layout. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import child_pids, write_json
from bench.embedded import Server, say
from bench.sustained import MIXES, encode_batches, load_average, maximum

LAYOUTS = {"one process": "false", "filing process": "true"}
DEFAULT_OUT = Path("bench-results") / "layouts.json"
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a live process has used (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of the server and of each of its children, by process id."""
    pids = [pid, *child_pids(pid)]
    return {p: cpu_seconds(p) for p in pids if Path(f"/proc/{p}/stat").exists()}


def one_run(layout: str, bodies: list[bytes], events: int, clients: int) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="cem-layouts-"))
    server = Server(run_dir, env={"CEM_FILING_PROCESS": LAYOUTS[layout]})
    try:
        server.wait_healthy()
        server.wait_idle()
        time.sleep(2.0)  # let the start-up's own work (imports, first queries) settle
        before = process_cpu(server.process.pid)
        result = maximum(server.target, bodies, events, server.lag, clients)
        after = process_cpu(server.process.pid)
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    main = after[server.process.pid] - before[server.process.pid]
    others = sum(after[p] - before.get(p, 0.0) for p in after if p != server.process.pid)
    per = 10_000 / max(1, result["accepted"])
    return {
        "layout": layout,
        "rate": round(result["rate"], 1),
        "accepted": result["accepted"],
        "seconds": round(result["seconds"], 2),
        "cpu_main_s_per_10k": round(main * per, 2),
        "cpu_children_s_per_10k": round(others * per, 2),
        "load_before": result["load_before"],
        "load_after": result["load_after"],
    }


def summary(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"{'layout':<16} {'runs':>4} {'median ev/s':>12} {'min–max':>14} "
        f"{'CPU s/10k main+children':>25} {'load 1-min':>12}"
    ]
    for layout in LAYOUTS:
        mine = [r for r in runs if r["layout"] == layout]
        if not mine:
            continue
        rates = [r["rate"] for r in mine]
        main = statistics.median(r["cpu_main_s_per_10k"] for r in mine)
        kids = statistics.median(r["cpu_children_s_per_10k"] for r in mine)
        loads = [r["load_before"][0] for r in mine] + [r["load_after"][0] for r in mine]
        lines.append(
            f"{layout:<16} {len(mine):>4} {statistics.median(rates):>12.0f} "
            f"{f'{min(rates):.0f}–{max(rates):.0f}':>14} "
            f"{f'{main:.1f} + {kids:.1f}':>25} {f'{min(loads):.1f}–{max(loads):.1f}':>12}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.layouts", description=__doc__)
    parser.add_argument("--pairs", type=int, default=4, help="runs of each layout (default 4)")
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--mix", choices=sorted(MIXES), default="identity")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    bodies = encode_batches(MIXES[args.mix](args.events, args.seed))
    runs: list[dict[str, Any]] = []
    order = list(LAYOUTS)
    for pair in range(args.pairs):
        for layout in order if pair % 2 == 0 else order[::-1]:
            say(f"pair {pair + 1}/{args.pairs}: {layout}, {args.events:,} events")
            run = one_run(layout, bodies, args.events, args.clients)
            runs.append(run)
            say(
                f"  {run['rate']:.0f} ev/s; CPU s per 10,000 events: main "
                f"{run['cpu_main_s_per_10k']}, children {run['cpu_children_s_per_10k']}; "
                f"load {run['load_before'][0]} → {run['load_after'][0]}"
            )
    print("\n".join(summary(runs)))
    write_json(args.out, {"mix": args.mix, "events": args.events, "seed": args.seed, "runs": runs})
    print(f"written to {args.out}; load average now {load_average()}")


if __name__ == "__main__":
    main()
