"""Committed notebooks are output-free and parameterizable; _toc.yml names only existing notebooks."""
from __future__ import annotations

import ast

import nbformat
import pytest

from diffgen_utils.config import REPO_ROOT
from diffgen_utils.book.run import toc_notebooks

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {REPO_ROOT / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; clear them"
    assert "papermill" not in nb.metadata, f"{path.name} is an executed copy, not a source"
    injected = [
        i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])
    ]
    assert not injected, f"{path.name}: cells {injected} were injected by papermill"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_parameters(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert cells, f"{path.name} has no code cell"
    first = cells[0]
    assert "parameters" in first.metadata.get("tags", []), \
        f"{path.name}: the first code cell must be tagged 'parameters'"
    assigned = set()
    for node in ast.parse(first.source).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        assigned |= {t.id for t in targets if isinstance(t, ast.Name)}
    missing = {"profile", "device"} - assigned
    assert not missing, f"{path.name}: the parameters cell does not assign {sorted(missing)}"


def test_toc_notebooks_exist():
    listed = toc_notebooks(REPO_ROOT)
    assert listed, "_toc.yml lists no notebooks"
    missing = [nb for nb in listed if not (REPO_ROOT / nb).exists()]
    assert not missing, f"_toc.yml lists notebooks that do not exist: {missing}"
