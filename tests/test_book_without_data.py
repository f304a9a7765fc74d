"""End to end: every chapter of the book at `smoke` on a machine with no face data (about two
minutes). Chapters that need faces run on the synthetic stand-in, say so on the page, and write
no scorecard row; chapters that need no data keep theirs."""
from __future__ import annotations

import json
import shutil

import nbformat

from diffgen_utils.book import run
from diffgen_utils.config import REPO_ROOT


def test_a_run_without_data_writes_no_stand_in_row(tmp_path, monkeypatch):
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / "book", tmp_path / "book")
    (tmp_path / "notebooks").mkdir()
    for nb in run.toc_notebooks(REPO_ROOT):
        shutil.copy(REPO_ROOT / nb, tmp_path / nb)
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("DIFFGEN_DATA", str(empty))
    monkeypatch.setenv("DIFFGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIFFGEN_CHECKPOINTS", str(tmp_path / "checkpoints"))

    assert run.main(["--profile", "smoke", "--no-build"], root=tmp_path) == 0

    chapters = [nb for nb in run.toc_notebooks(tmp_path) if nb != run.SCORECARD_NOTEBOOK]
    needs_faces = {nb for nb in chapters if run.chapter_needs(tmp_path / nb).get("data")}
    record = json.loads((tmp_path / "_build" / "run.json").read_text())
    assert record["face_data"] is False and record["status"] == "ok"
    assert set(record["substituted"]) == needs_faces
    rows = json.loads((tmp_path / "_build" / "scorecard.json").read_text())
    free = {run.chapter_of(tmp_path / nb) for nb in chapters if nb not in needs_faces}
    assert rows and {r["chapter"] for r in rows} == free  # the data-free chapters keep theirs
    for nb in needs_faces:
        page = nbformat.read(tmp_path / "_build" / "source" / nb, as_version=4)
        notes = [c for c in page.cells if run.NOTE_TAG in c.metadata.get("tags", [])]
        absent = " or ".join(run.chapter_needs(tmp_path / nb)["data"])
        assert notes and f"No {absent} data was found" in notes[0].source, nb
