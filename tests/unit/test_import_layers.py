"""The import graph of our own packages has layers and no cycle (issue 14).

- `schemas` imports nothing of ours; `kernel` imports only `schemas`;
- `services/*` import only `kernel`, `schemas` and services (never the composition roots in `cem`);
- no module of ours is part of an import cycle;
- an engine's client library is imported only by the adapters (`cem/adapters/`).

Read from the source with `ast`, so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "kernel", "services", "cem", "bench")
# The client libraries of the engines (and eventsourcing's persistence modules built on them).
ENGINE_CLIENTS = (
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "clickhouse_driver",
    "chdb",
    "kafka",
    "aiokafka",
    "eventsourcing.sqlite",
    "eventsourcing.postgres",
)
ALLOWED_BELOW = {
    "schemas": {"schemas"},
    "kernel": {"schemas", "kernel"},
    "services": {"schemas", "kernel", "services"},
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """The modules of ours a file imports (`from pkg import sub` counts as `pkg.sub`)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            ours = [s for s in subs if s in MODULES]
            yield from ours
            if len(ours) < len(subs) and node.module.split(".")[0] in PACKAGES:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] in PACKAGES)


GRAPH = {m: {i for i in _imports(p) if i != m} for m, p in MODULES.items()}


def _third_party_imports(path: Path) -> Iterator[str]:
    """Every module a file imports by absolute name, lazy imports included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def _is_engine_client(name: str) -> bool:
    return any(name == c or name.startswith(f"{c}.") for c in ENGINE_CLIENTS)


def test_engine_clients_are_imported_only_by_the_adapters() -> None:
    """Benchmarks (`bench`) are left out: their raw baselines use the engines' own clients."""
    wrong = [
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if module.split(".")[0] != "bench" and not module.startswith("cem.adapters")
        for name in sorted(set(_third_party_imports(path)))
        if _is_engine_client(name)
    ]
    assert wrong == []


def test_every_layer_imports_only_what_is_below_it() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if (allowed := ALLOWED_BELOW.get(module.split(".")[0])) is not None
        for target in sorted(targets)
        if target.split(".")[0] not in allowed
    ]
    assert wrong == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next((t for t in edges if t in GRAPH), None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(GRAPH[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle() -> None:
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a two-module loop is reported."""
    saved = dict(GRAPH)
    try:
        GRAPH["kernel.ports"] = saved["kernel.ports"] | {"kernel.clock"}
        GRAPH["kernel.clock"] = saved["kernel.clock"] | {"kernel.ports"}
        assert ["kernel.clock", "kernel.ports"] in _cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
