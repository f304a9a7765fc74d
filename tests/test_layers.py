"""The package's import graph, read from the code (ast): no import cycle between its modules,
and the three layers (DESIGN.md, Layers) import only downwards: the science modules of
diffgen_utils import neither a chapter module (diffgen_utils.chapters) nor the book's tooling
(diffgen_utils.book); a chapter module imports no other chapter's and no tooling; the tooling
imports no chapter.

Every import of a diffgen_utils module counts, at module level or inside a function, except
those under `if __name__ == "__main__":` (an entry point runs as `__main__`, not as the module
that the rest of the package imports).

    python tests/test_layers.py      # prints the graph's cycles (none: nothing)
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "diffgen_utils"
ROOT = Path(__file__).resolve().parent.parent


def module_names(root=ROOT) -> dict[str, Path]:
    """{dotted name: file} of every module of the package (a package by its __init__.py)."""
    names = {}
    for path in sorted((Path(root) / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _is_main_guard(node) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _imports(tree):
    """Import nodes of a module, outside `if __name__ == ...` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            elif not _is_main_guard(child):
                stack.append(child)


def imported_modules(name: str, path: Path, modules) -> set[str]:
    """The package's modules that module `name` imports, with the packages above them (an
    import of a.b.c runs a and a.b first)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[:len(package.split(".")) - node.level + 1] +
                    ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` only mod
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        for target in targets:
            while target:
                if target in modules and target != name:
                    found.add(target)
                target = target.rpartition(".")[0]
    return found


def import_graph(root=ROOT) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan), each as a
    sorted list: every module there imports every other, directly or not."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
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
            component = []
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


def layer(name: str) -> str:
    """'chapters', 'book' or 'science' (every other module of the package)."""
    part = name.split(".")[1] if name.count(".") else ""
    return part if part in ("chapters", "book") else "science"


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """'importer -> imported' for every import against the layers."""
    forbidden = {
        "science": {"chapters", "book"}, "chapters": {"chapters", "book"}, "book": {"chapters"}
    }
    return [
        f"{name} -> {target}" for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer(target) in forbidden[layer(name)] and target != name.rpartition(".")[0]
    ]


def test_the_checker_finds_a_cycle_and_reads_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    for file, text in {
            "__init__.py": "", "a.py": "from . import b\n", "b.py":
            "def f():\n    from .sub import c\n", "sub/__init__.py": "", "sub/c.py":
            "from ..a import f\n", "d.py": "import diffgen_utils.a\nif __name__ == '__main__':\n"
            "    from . import e\n", "e.py": "from .d import x\n"
    }.items():
        (pkg / file).write_text(text)
    graph = import_graph(tmp_path)
    assert graph[f"{PACKAGE}.d"] == {PACKAGE, f"{PACKAGE}.a"}  # the __main__ block is left out
    assert cycles(graph) == [[f"{PACKAGE}.a", f"{PACKAGE}.b", f"{PACKAGE}.sub.c"]]
    assert layer_violations(graph) == []


def test_the_checker_finds_an_import_against_the_layers(tmp_path):
    pkg = tmp_path / PACKAGE
    for folder in ("chapters", "book"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    for file, text in {
            "__init__.py": "", "plotting.py": "", "chapters/one.py":
            "from .. import plotting\nfrom . import two\n", "chapters/two.py":
            "from ..book import scorecard\n", "book/scorecard.py": "from ..plotting import x\n",
            "book/run.py": "from . import scorecard\n"
    }.items():
        (pkg / file).write_text(text)
    assert layer_violations(import_graph(tmp_path)) == [
        f"{PACKAGE}.chapters.one -> {PACKAGE}.chapters.two",
        f"{PACKAGE}.chapters.two -> {PACKAGE}.book",
        f"{PACKAGE}.chapters.two -> {PACKAGE}.book.scorecard"
    ]


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_layers_import_downwards():
    graph = import_graph()
    assert {layer(name) for name in graph} == {"science", "chapters", "book"}
    assert layer_violations(graph) == []


if __name__ == "__main__":
    graph = import_graph()
    for component in cycles(graph):
        print("cycle:", " <-> ".join(component))
    for violation in layer_violations(graph):
        print("against the layers:", violation)
