"""tools/notebook_code.py: the notebooks' code cells as .py files, and the runs they repeat."""
import importlib.util
import json

from diffgen_utils.config import REPO_ROOT

TOOL = REPO_ROOT / "tools" / "notebook_code.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("notebook_code", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(path, *cells):
    path.write_text(
        json.dumps({
            "cells": [{"cell_type": kind, "id": f"c{i}", "source": text.splitlines(keepends=True)}
                      for i, (kind, text) in enumerate(cells)]
        }))
    return path


def test_export_and_repeats(tmp_path):
    tool = load_tool()
    block = ("total = 0\nfor k in range(5):\n    total += k * scale\n"
             "print(f'{total} of {scale}')\nresult = [total, scale]\n")
    alike = block.replace("total", "other").replace("scale", "size").replace("5", "7")
    a = notebook(tmp_path / "01_a.ipynb", ("markdown", "# Title"), ("code", "import os\n" + block))
    b = notebook(tmp_path / "02_b.ipynb", ("code", "x = 1\n\n" + block), ("code", alike))
    files = tool.export([a, b], tmp_path / "out")
    assert [f.name for f in files] == ["01_a.py", "02_b.py"]
    assert files[0].read_text().startswith("# %% cell 1 (c1)\nimport os\ntotal = 0\n")
    assert tool.repeats(files, min_lines=5) == [
        "same 01_a.py:3-7 ~ 02_b.py:4-8", "shape 01_a.py:3-7 ~ 02_b.py:11-15",
        "shape 02_b.py:4-8 ~ 02_b.py:11-15"
    ]
    assert tool.repeats(files, min_lines=6) == []


def test_the_book_exports(tmp_path, capsys):
    assert load_tool().main(["--out", str(tmp_path)]) == 0
    assert "notebooks exported" in capsys.readouterr().out
    assert (tmp_path / "06_low_dim_manifolds.py").exists()
