"""The package map of docs/architecture.md, enforced: no import cycle, and each part imports only
the parts below it.

Imports are read from the source (every ``import`` statement, module level or inside a function,
``TYPE_CHECKING`` blocks included): an import placed inside a function to dodge a cycle is still
an edge here, so the cycle it hides fails this test.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "connectors", "security")

#: The parts of the code base and what each may import (besides itself and third-party code).
#: The kernel is the hub's top-level modules that hold no use case: errors, configuration, the
#: envelope, the mapping engine, schemas, logs, redaction, the key set.
KERNEL = {"hub.errors", "hub.clock", "hub.config", "hub.envelope", "hub.mapping", "hub.schemas",
          "hub.logs", "hub.masking", "hub.addresses"}
LAYERS: dict[str, set[str]] = {
    "kernel": set(),
    "security": {"kernel"},
    "hub.keyset": {"kernel", "security"},
    "connectors": {"kernel", "security"},
    "hub.store": {"kernel", "security", "hub.keyset"},
    "hub.evidence": {"kernel", "security", "hub.keyset", "hub.store"},
    "hub.services": {"kernel", "hub.keyset", "hub.store"},
    "hub.i18n": {"kernel"},
    "hub.cases": {"kernel", "security", "hub.keyset", "hub.store", "hub.evidence",
                  "hub.services", "connectors"},
    "hub.appointments": {"kernel", "security", "hub.store", "hub.evidence", "hub.services",
                         "hub.cases"},
    "hub.delivery": {"kernel", "security", "hub.keyset", "hub.store", "hub.evidence",
                     "hub.services", "hub.cases", "connectors"},
    "hub.ops": {"kernel", "hub.store", "hub.evidence", "hub.delivery"},
    "hub.runtime": {"kernel", "security", "connectors", "hub.keyset", "hub.store",
                    "hub.evidence", "hub.services", "hub.cases", "hub.appointments",
                    "hub.delivery", "hub.ops"},
    "hub.web": {"kernel", "security", "connectors", "hub.keyset", "hub.store", "hub.evidence",
                "hub.services", "hub.cases", "hub.appointments", "hub.delivery", "hub.ops",
                "hub.i18n", "hub.runtime"},
    "hub.testing": {"kernel", "security", "connectors", "hub.keyset", "hub.store",
                    "hub.evidence", "hub.services", "hub.cases", "hub.appointments",
                    "hub.delivery", "hub.ops", "hub.i18n", "hub.runtime", "hub.web"},
    "hub.demo": {"kernel", "security", "connectors", "hub.keyset", "hub.store", "hub.evidence",
                 "hub.services", "hub.cases", "hub.appointments", "hub.delivery", "hub.ops",
                 "hub.i18n", "hub.runtime", "hub.web", "hub.testing"},
    "hub.chaos": {"kernel", "security", "connectors", "hub.keyset", "hub.store",
                  "hub.evidence", "hub.services", "hub.cases", "hub.appointments",
                  "hub.delivery", "hub.ops", "hub.runtime", "hub.web", "hub.testing",
                  "hub.demo"},
    "hub.cli": {"kernel", "security", "connectors", "hub.keyset", "hub.store", "hub.evidence",
                "hub.services", "hub.cases", "hub.appointments", "hub.delivery", "hub.ops",
                "hub.i18n", "hub.runtime", "hub.web", "hub.testing", "hub.demo", "hub.chaos"},
}


def part_of(module: str) -> str:
    if module in KERNEL:
        return "kernel"
    for part in sorted(LAYERS, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    return "hub" if module == "hub" else module


def modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts or "templates" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in its source)."""
    known = modules() if known is None else known
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges[module].add(name)
    return edges


def cycles_in(known: dict[str, Path]) -> list[list[str]]:
    graph = imports(known)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in known:
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle() -> None:
    cycles = cycles_in(modules())
    assert not cycles, f"import cycles: {cycles}"


def test_a_cycle_hidden_in_a_function_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import B\nA = 1\n")
    (package / "b.py").write_text("B = 2\n\ndef late():\n    from pkg import a\n    return a.A\n")
    assert cycles_in(modules(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b"]]


def test_each_part_imports_only_the_parts_below_it() -> None:
    wrong = []
    for module, targets in imports().items():
        source = part_of(module)
        if source not in LAYERS:
            continue
        for target in targets:
            destination = part_of(target)
            if destination != source and destination not in LAYERS[source]:
                wrong.append(f"{module} -> {target} ({source} may not import {destination})")
    assert not wrong, "\n".join(sorted(wrong))


def test_every_module_belongs_to_a_part() -> None:
    loose = sorted(m for m in modules() if part_of(m) not in LAYERS
                   and m not in ("hub", "hub.__main__"))
    assert not loose, f"modules outside the package map: {loose}"

