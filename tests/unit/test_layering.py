"""The package's layering, read from the source: who may import whom, and no import circle.

Every ``import`` counts, wherever it is: at module level, inside a function (a deferred
import) or under ``if TYPE_CHECKING:`` (mypy reads those). A deferred import does not
break a circle, it only hides it, so the circle check sees them all.

Layers, each importing only those it lists (see docs/layout.md):

- ground: ``errors``, ``config``, ``results``: the vocabulary everything shares;
- base: the event contracts and Kafka plumbing (``events``, ``topics``);
- metrics: pure statistics; besides itself only the ground (no Kafka, Faust or database);
- store: ClickHouse (server and embedded); besides itself only the ground;
- sdk: the producer client for services (``sdk/``); no domain, no runtime;
- domain: ingest, join, windows, merge, alerts, report, backfill;
- runtime: Faust (the only layer that may import ``faust``, ``mode`` or ``aiokafka``);
- commands: the command line and the demo, on top of everything.

A new module must be placed in a layer here, or this test fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "stream"

#: Layer -> module names; a name covers the module and, for a package, everything under it.
LAYERS: dict[str, tuple[str, ...]] = {
    "ground": ("stream", "stream.errors", "stream.config", "stream.results"),
    "base": ("stream.events", "stream.topics"),
    "metrics": ("stream.metrics",),
    "store": ("stream.store",),
    "sdk": ("stream.sdk", "stream.client"),
    "domain": (
        "stream.ingest",
        "stream.join",
        "stream.windows",
        "stream.merge",
        "stream.alerts",
        "stream.report",
        "stream.backfill",
    ),
    "runtime": ("stream.runtime",),
    "commands": ("stream.cli", "stream.demo"),
}

ALLOWED: dict[str, frozenset[str]] = {
    "ground": frozenset({"ground"}),
    "base": frozenset({"ground", "base"}),
    "metrics": frozenset({"ground", "metrics"}),
    "store": frozenset({"ground", "store"}),
    "sdk": frozenset({"ground", "base", "sdk"}),
    "domain": frozenset({"ground", "base", "metrics", "store", "domain"}),
    "runtime": frozenset({"ground", "base", "metrics", "store", "domain", "runtime"}),
    "commands": frozenset(LAYERS),
}

#: Third-party packages a layer must not import.
FAUST = frozenset({"faust", "mode", "aiokafka"})
FORBIDDEN_EXTERNAL: dict[str, frozenset[str]] = {
    layer: FAUST for layer in LAYERS if layer != "runtime"
}
FORBIDDEN_EXTERNAL["metrics"] = FAUST | {
    "confluent_kafka",
    "chdb",
    "clickhouse_connect",
    "prometheus_client",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


def imported(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """Every module ``name`` imports (dotted), deferred and TYPE_CHECKING imports included.

    ``from a import b`` names the module ``a.b`` when that is a module, else ``a``.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield sub if sub in known else target


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for layer, names in LAYERS.items():
        for n in names:
            covers = module == n or (n != "stream" and module.startswith(n + "."))
            if covers and (best is None or len(n) > best[0]):
                best = (len(n), layer)
    return None if best is None else best[1]


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(internal edges, external top-level packages) per module of ``package``."""
    modules = find_modules(package)
    known = set(modules)
    internal: dict[str, set[str]] = {m: set() for m in modules}
    external: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target in imported(tree, name, path.name == "__init__.py", known):
            if target == "stream" or target.startswith("stream."):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    internal[name].add(target)
            else:
                external[name].add(target.split(".")[0])
    return internal, external


def layer_violations(internal: dict[str, set[str]], external: dict[str, set[str]]) -> list[str]:
    problems: list[str] = []
    for module in sorted(internal):
        layer = layer_of(module)
        if layer is None:
            problems.append(f"{module}: in no layer (add it to LAYERS in {Path(__file__).name})")
            continue
        for target in sorted(internal[module]):
            target_layer = layer_of(target)
            if target_layer is not None and target_layer not in ALLOWED[layer]:
                problems.append(f"{module} ({layer}) imports {target} ({target_layer})")
        for pkg in sorted(external[module] & FORBIDDEN_EXTERNAL.get(layer, frozenset())):
            problems.append(f"{module} ({layer}) imports {pkg}")
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_keeps_to_its_layer() -> None:
    internal, external = import_graph()
    assert layer_violations(internal, external) == []


def test_no_import_circle_between_modules() -> None:
    internal, _ = import_graph()
    assert circles(internal) == []


def test_metrics_and_runtime_are_where_the_layers_say() -> None:
    """Guards the guard: the patterns match real modules, so the test above cannot pass
    vacuously after a move."""
    modules = find_modules()
    for names in LAYERS.values():
        for n in names:
            assert any(m == n or m.startswith(n + ".") for m in modules), n


# ---------------------------------------------------------------------- the checker itself
@pytest.fixture
def fake_package(tmp_path: Path) -> Path:
    root = tmp_path / "stream"
    (root / "metrics").mkdir(parents=True)
    (root / "runtime").mkdir()
    for p in ("__init__.py", "metrics/__init__.py", "runtime/__init__.py"):
        (root / p).write_text("")
    return root


def test_checker_finds_an_upward_import_hidden_in_a_function(fake_package: Path) -> None:
    (fake_package / "metrics" / "a.py").write_text(
        "def f():\n    from stream.runtime.app import x\n    import faust\n"
    )
    (fake_package / "runtime" / "app.py").write_text("x = 1\n")
    internal, external = import_graph(fake_package)
    assert layer_violations(internal, external) == [
        "stream.metrics.a (metrics) imports stream.runtime.app (runtime)",
        "stream.metrics.a (metrics) imports faust",
    ]


def test_checker_finds_a_circle_through_type_checking_and_relative_imports(
    fake_package: Path,
) -> None:
    (fake_package / "metrics" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
    )
    (fake_package / "metrics" / "b.py").write_text("from stream.metrics import c\n")
    (fake_package / "metrics" / "c.py").write_text(
        "def g():\n    from stream.metrics.a import A\n"
    )
    (fake_package / "metrics" / "d.py").write_text("from stream.metrics.a import A\n")
    internal, external = import_graph(fake_package)
    assert layer_violations(internal, external) == []
    assert circles(internal) == [["stream.metrics.a", "stream.metrics.b", "stream.metrics.c"]]


def test_checker_flags_a_module_in_no_layer(fake_package: Path) -> None:
    (fake_package / "stray.py").write_text("")
    internal, external = import_graph(fake_package)
    assert layer_violations(internal, external) == [
        "stream.stray: in no layer (add it to LAYERS in test_layering.py)"
    ]
