"""Committed notebooks are output-free and parameterizable; _toc.yml names only existing notebooks."""
from __future__ import annotations

import ast
import re

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


# The runner decides what a chapter can run before its first cell (book.run.plan_chapter); a cell
# that tests for a model, a data folder or a stand-in would hide that decision on the page.
AVAILABILITY = re.compile(
    r"^\s*(if|elif|while)\b[^\n]*(\bready\b|stand_in|substitute|has_faces|\.exists\(|status\(|"
    r"missing|available|\bin nets\b)", re.M)
# Model names come from the families (families.FACES.name(...)); no cell spells one out.
BUILT_NAME = re.compile(r"""["'][a-z_0-9]*(celeba|calpha|disks|ray|cone|fer2013)[a-z_0-9]*-N""")


def code_cells(path):
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_branches_on_availability(path):
    found = [m.group(0).strip() for src in code_cells(path) for m in AVAILABILITY.finditer(src)]
    assert not found, f"{path.name} branches on what is available: {found}; declare the needs " \
        "in the notebook metadata (\"diffgen\": {\"needs\": ...}) and let the runner decide"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_builds_a_model_name(path):
    found = [m.group(0) for src in code_cells(path) for m in BUILT_NAME.finditer(src)]
    assert not found, f"{path.name} spells model names {found}; ask the family " \
        "(families.FACES.name(profile, n, subset), ...)"


def test_the_notebook_guards_can_fail():
    assert AVAILABILITY.search("x = 1\nif name in nets:\n    y = 2")
    assert AVAILABILITY.search("if not pool.substitute:\n    pass")
    assert not AVAILABILITY.search("if F.deeper_ns:\n    pass")
    assert BUILT_NAME.search('zoo.load(f"celeba-N{n}-S1", P)')
    assert BUILT_NAME.search("zoo.load('calpha2-N20000', P)")
    assert not BUILT_NAME.search("zoo.load(FACES.name(P, n, 'S1'), P)")


def test_toc_notebooks_exist():
    listed = toc_notebooks(REPO_ROOT)
    assert listed, "_toc.yml lists no notebooks"
    missing = [nb for nb in listed if not (REPO_ROOT / nb).exists()]
    assert not missing, f"_toc.yml lists notebooks that do not exist: {missing}"
