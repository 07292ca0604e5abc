"""The package's import graph: no cycle between modules, and the layers import downwards only.

Every module of ``recsim_gym/`` is parsed with :mod:`ast` (nothing is imported), and every ``import`` statement
counts: top-level, inside functions (the lazy imports of optional dependencies and of heavy modules) and under
``if TYPE_CHECKING``. ``from pkg import name`` is an edge to the module ``pkg.name`` when there is one, else to
``pkg``; a module that imports ``a.b.c`` depends on ``a.b.c`` (the parent packages' ``__init__`` run too, but that
is the interpreter's doing, not a dependency the module chose, so it is not an edge).

Layers: data -> user models -> envs -> agents. ``recsim_gym.data``,
``recsim_gym.user_models`` and ``recsim_gym.envs`` never import ``recsim_gym.agents``; ``recsim_gym.data`` and
``recsim_gym.user_models`` never import ``recsim_gym.envs``. The rules name packages by prefix, so they keep holding
when modules move inside them (e.g. ``recsim_gym/envs/gan_user/``, ``recsim_gym/envs/synthetic_mdp/``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recsim_gym"

#: Cycles left in place on purpose, each as the set of its modules. Empty: main has none. A new cycle, or a known one
#: that grows, fails the test.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()

#: (importing package, imported package): modules under the first never import the second.
FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("recsim_gym.data", "recsim_gym.agents"),
    ("recsim_gym.user_models", "recsim_gym.agents"),
    ("recsim_gym.envs", "recsim_gym.agents"),
    ("recsim_gym.data", "recsim_gym.envs"),
    ("recsim_gym.user_models", "recsim_gym.envs"),
)

Graph = dict[str, dict[str, int]]  # module -> {imported module: line of the first such import}


def module_files(package: Path) -> dict[str, tuple[Path, bool]]:
    """Every module under ``package``: dotted name -> (file, whether it is a package's ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph(package: Path) -> Graph:
    """The module import graph of ``package`` (imports of other top-level packages are left out)."""
    modules = module_files(package)
    root = package.name

    def existing(name: str) -> str | None:
        """``name`` or its closest enclosing module (``pkg.mod.Class`` -> ``pkg.mod``)."""
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for name, (path, is_package) in modules.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [existing(alias.name) for alias in node.names if alias.name.split(".")[0] == root]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package, one level up per extra dot
                    anchor = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                if base.split(".")[0] == root:
                    targets = [
                        f"{base}.{a.name}" if f"{base}.{a.name}" in modules else existing(base) for a in node.names
                    ]
            for target in targets:
                if target is not None and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The groups of two or more modules that import each other, directly or through others (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def describe_cycle(graph: Graph, group: Iterable[str]) -> str:
    """One concrete cycle through the first module of ``group``: ``a (line 3) -> b (line 7) -> a``."""
    members = set(group)
    start = min(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first, inside the group: the shortest cycle back to ``start``
        nxt = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    path = paths[node] + [start]
                    steps = [f"{a} (line {graph[a][b]})" for a, b in zip(path[:-1], path[1:], strict=True)]
                    return " -> ".join([*steps, start])
                if child in members and child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(members)}")


def layer_violations(graph: Graph, forbidden: Iterable[tuple[str, str]] = FORBIDDEN) -> list[str]:
    """``module (line n) imports target`` for every import that breaks a rule of ``forbidden``."""

    def under(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return [
        f"{module} (line {line}) imports {target}: {low} must not import {high}"
        for module, edges in sorted(graph.items())
        for target, line in sorted(edges.items())
        for low, high in forbidden
        if under(module, low) and under(target, high)
    ]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(PACKAGE)


def test_the_graph_sees_the_whole_package(graph: Graph) -> None:
    # A parser that silently dropped imports would pass everything below: check it finds edges we know exist.
    assert len(graph) >= 50
    assert "recsim_gym.cli" in graph["recsim_gym.user_models.commands"]  # top-level ``from ... import``
    assert sum(len(edges) for edges in graph.values()) >= 100


def test_no_import_cycle(graph: Graph) -> None:
    groups = strongly_connected(graph)
    new = [describe_cycle(graph, g) for g in groups if frozenset(g) not in KNOWN_CYCLES]
    assert not new, "import cycle(s) between modules of recsim_gym:\n" + "\n".join(new)


def test_layers_import_downwards_only(graph: Graph) -> None:
    bad = layer_violations(graph)
    assert not bad, "imports against the layers (data -> user models -> envs -> agents):\n" + "\n".join(bad)


def test_checks_catch_a_cycle_and_a_layer_break(tmp_path: Path) -> None:
    # A small package with a function-level cycle through a relative import and a forbidden top-level import.
    pkg = tmp_path / "recsim_gym"
    for folder in ("envs/kernel", "agents", "data"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "envs" / "kernel" / "step.py").write_text("def f():\n    from ..shells import Env\n")
    (pkg / "envs" / "shells.py").write_text("from recsim_gym.envs.kernel import step\nclass Env: ...\n")
    (pkg / "agents" / "dqn.py").write_text("import recsim_gym.envs.shells\n")
    (pkg / "data" / "logs.py").write_text("from recsim_gym.agents import dqn\n")
    graph = import_graph(pkg)
    assert graph["recsim_gym.envs.kernel.step"] == {"recsim_gym.envs.shells": 2}
    assert graph["recsim_gym.envs.shells"] == {"recsim_gym.envs.kernel.step": 1}
    groups = strongly_connected(graph)
    assert groups == [["recsim_gym.envs.kernel.step", "recsim_gym.envs.shells"]]
    assert describe_cycle(graph, groups[0]) == (
        "recsim_gym.envs.kernel.step (line 2) -> recsim_gym.envs.shells (line 1) -> recsim_gym.envs.kernel.step"
    )
    assert layer_violations(graph) == [
        "recsim_gym.data.logs (line 1) imports recsim_gym.agents.dqn: recsim_gym.data must not import recsim_gym.agents"
    ]


def test_top_level_envs_folder_holds_cards_and_configs_only() -> None:
    # Code lives in the package; envs/<family>/ holds the env card and the configs that commands read.
    envs = PACKAGE.parent / "envs"
    files = [p for p in envs.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files, "envs/ is missing"
    code = [str(p.relative_to(envs)) for p in files if p.suffix.lower() not in (".md", ".yaml", ".yml", ".json")]
    assert not code, f"envs/ should hold cards and configs only; found {code} (make it a package command)"
