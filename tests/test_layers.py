"""The package's import graph, read from the code (ast): no import cycle between its modules.

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
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` only mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
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


def test_the_checker_finds_a_cycle_and_reads_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    for file, text in {"__init__.py": "", "a.py": "from . import b\n",
                       "b.py": "def f():\n    from .sub import c\n",
                       "sub/__init__.py": "", "sub/c.py": "from ..a import f\n",
                       "d.py": "import diffgen_utils.a\nif __name__ == '__main__':\n"
                               "    from . import e\n",
                       "e.py": "from .d import x\n"}.items():
        (pkg / file).write_text(text)
    graph = import_graph(tmp_path)
    assert graph[f"{PACKAGE}.d"] == {PACKAGE, f"{PACKAGE}.a"}  # the __main__ block is left out
    assert cycles(graph) == [[f"{PACKAGE}.a", f"{PACKAGE}.b", f"{PACKAGE}.sub.c"]]


def test_no_import_cycle():
    assert cycles(import_graph()) == []


if __name__ == "__main__":
    for component in cycles(import_graph()):
        print("cycle:", " <-> ".join(component))
