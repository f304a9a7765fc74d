"""Tests of the runner (diffgen_utils.book.run) on a throw-away mini-book, independent of the
chapters."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from diffgen_utils.book import run
from diffgen_utils.config import REPO_ROOT

CONFIG = """title: mini
author: tests
only_build_toc_files: true
exclude_patterns: [_build]
execute:
  execute_notebooks: "off"
"""
TOC = """format: jb-book
root: book/intro
parts:
  - caption: Chapters
    chapters:
      - file: notebooks/01_good
      - file: notebooks/02_bad
"""


def _notebook(path, *sources):
    params = new_code_cell('profile = "book"\ndevice = "cpu"', metadata={"tags": ["parameters"]})
    cells = [new_markdown_cell(f"# {path.stem}"), params] + [new_code_cell(s) for s in sources]
    nb = new_notebook(
        cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        })
    nbformat.write(nb, path)


@pytest.fixture
def book(tmp_path):
    (tmp_path / "_config.yml").write_text(CONFIG)
    (tmp_path / "_toc.yml").write_text(TOC)
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Mini book\n\nA test.\n")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    (nbs / "helper.txt").write_text("data next to the notebooks\n")
    _notebook(
        nbs / "01_good.ipynb", "import os, pathlib\n"
        "print(profile, device, os.environ['DIFFGEN_BATCH'], pathlib.Path('helper.txt').exists())",
        "from diffgen_utils.book import scorecard\n"
        "scorecard.record('G.one', chapter='01', measure='one', measured=1.0,\n"
        "                 profile=profile, target='>= 0')")
    _notebook(nbs / "02_bad.ipynb", "x = 1", "raise ValueError('boom')", "print('never')")
    return tmp_path


def test_toc_and_selection(book):
    nbs = run.toc_notebooks(book)
    assert nbs == ["notebooks/01_good.ipynb", "notebooks/02_bad.ipynb"]
    assert run.select_notebooks(nbs, "02") == ["notebooks/02_bad.ipynb"]
    assert run.select_notebooks(nbs, None) == nbs
    with pytest.raises(ValueError, match=r"unknown notebook prefix 07.*01 \(01_good\)"):
        run.select_notebooks(nbs, "01,07")


def test_good_notebook_executes_into_staging(book):
    source = (book / "notebooks" / "01_good.ipynb").read_bytes()
    record = run.run_book("smoke", ["notebooks/01_good.ipynb"], "cpu", build=False, root=book)
    assert record["status"] == "ok" and record["seconds"]["notebooks/01_good.ipynb"] > 0
    staged = book / "_build" / "source"
    nb = nbformat.read(staged / "notebooks" / "01_good.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "hide-input" in injected[0].metadata["tags"]
    assert 'profile = "smoke"' in injected[0].source
    defaults = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(defaults) == 1 and "remove-cell" in defaults[0].metadata["tags"]
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "smoke cpu 1 True" in printed
    assert (book / "notebooks" / "01_good.ipynb").read_bytes() == source  # source untouched
    assert (staged / "notebooks" / "helper.txt").exists() and (staged / "book" /
                                                               "intro.md").exists()
    card = json.loads((book / "_build" / "scorecard.json").read_text())
    assert [(r["id"], r["profile"], r["pass"]) for r in card] == [("G.one", "smoke", True)]
    assert json.loads((book / "_build" / "run.json").read_text())["profile"] == "smoke"
    # 02 was not selected: staged unexecuted
    assert "papermill" not in nbformat.read(staged / "notebooks" / "02_bad.ipynb", 4).metadata


def test_unselected_notebook_keeps_earlier_output(book, capsys):
    staged = run.stage_book([], "smoke", root=book)
    path = staged / "notebooks" / "01_good.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["papermill"] = {"parameters": {"profile": "smoke", "device": "cpu"}}
    nbformat.write(nb, path)
    run.stage_book(["notebooks/02_bad.ipynb"], "smoke", root=book)
    assert "papermill" in nbformat.read(path, as_version=4).metadata
    assert "keeping the earlier output of notebooks/01_good.ipynb" in capsys.readouterr().out
    run.stage_book(["notebooks/01_good.ipynb"], "smoke", root=book)  # selected: fresh copy
    assert "papermill" not in nbformat.read(path, as_version=4).metadata


def test_failing_notebook_fails_the_run(book, capsys):
    html = book / "_build" / "html"
    html.mkdir(parents=True)
    (html / "index.html").write_text("stale")
    rc = run.main(["--profile", "smoke", "--notebooks", "02", "--no-build"], root=book)
    assert rc != 0
    err = capsys.readouterr().err
    message = (book / "_build" / "FAILED").read_text()
    for text in (err, message):
        assert "notebooks/02_bad.ipynb" in text
        # cells: markdown, parameters, x = 1, raise; the injected cell also runs (In [2])
        assert "cell index 3" in text and "execution count 4" in text
        assert "ValueError: boom" in text
    assert not html.exists()
    assert json.loads((book / "_build" / "run.json").read_text())["status"] == "failed"


def test_unknown_prefix_is_a_usage_error(book, capsys):
    with pytest.raises(SystemExit) as exc:
        run.main(["--notebooks", "09"], root=book)
    assert exc.value.code == 2
    assert "available: 01 (01_good), 02 (02_bad)" in capsys.readouterr().err


@pytest.mark.slow
def test_full_run_builds_the_book(book):
    """The one test that runs jupyter-book (a few seconds here; up to ~30 s on a busy machine)."""
    (book / "_toc.yml").write_text(
        TOC.replace("      - file: notebooks/02_bad\n", "") + "  - caption: About\n    chapters:\n"
        "      - file: book/run_cost\n")
    (book / "_build").mkdir()
    (book / "_build" / "FAILED").write_text("an earlier failure")
    assert run.main(["--profile", "smoke"], root=book) == 0
    html = book / "_build" / "html"
    assert (html / "index.html").exists() and (html / "notebooks" / "01_good.html").exists()
    assert "smoke cpu 1 True" in (html / "notebooks" / "01_good.html").read_text()
    assert not (book / "_build" / "FAILED").exists()
    assert not (book / "_build" / "html.new").exists()
    record = json.loads((book / "_build" / "run.json").read_text())
    assert record["status"] == "ok" and record["notebooks"] == ["notebooks/01_good.ipynb"]
    # the generated cost page builds, and every page's footer names the build
    cost = (html / "book" / "run_cost.html").read_text()
    assert "What each run cost" in cost and "01 good" in cost
    intro = (html / "book" / "intro.html").read_text()
    assert all("Built from commit" in page and "profile smoke." in page for page in (cost, intro))


def test_run_writes_the_cost_page_and_the_footer(book):
    """The cost page shows this run's chapter times, an earlier run's of the other profile
    (here a run.json older than _build/runs/) and, for a chapter this run did not execute, the
    time of the last run at its profile; the footer names the build."""
    build = book / "_build"
    (build / "runs").mkdir(parents=True)
    good, bad = "notebooks/01_good.ipynb", "notebooks/02_bad.ipynb"
    (build / "run.json").write_text(
        json.dumps({
            "profile": "book", "seconds": {good: 4.0}, "status": "ok", "git_commit": "b" * 40,
            "date": "2025-01-01 00:00 UTC", "data_dir": "/machine/path/data"
        }))
    (build / "runs" / "smoke.json").write_text(
        json.dumps({
            "profile": "smoke", "seconds": {good: 1.0, bad: 12.0}, "status": "failed",
            "git_commit": "a" * 40, "date": "2024-12-01 00:00 UTC"
        }))
    config = (book / "_config.yml").read_text()

    record = run.run_book("smoke", [good], "cpu", build=False, root=book)
    page = (build / "source" / "book" / "run_cost.md").read_text()
    shown = run.pages.duration(record["seconds"][good])
    assert f"| {{doc}}`01 good </notebooks/01_good>` | {shown} | 4.0 s |" in page
    assert "| {doc}`02 bad </notebooks/02_bad>` | 12.0 s (at aaaaaaa) | — |" in page
    assert "- `book`: the last run at this profile, commit `bbbbbbb`, 2025-01-01 00:00 UTC" in page
    assert record["date"] in page and "/machine/path" not in page
    saved = json.loads((build / "runs" / "smoke.json").read_text())
    assert saved["seconds"] == record["seconds"] and saved["earlier_seconds"][bad] == {
        "seconds": 12.0, "git_commit": "a" * 40, "date": "2024-12-01 00:00 UTC", "ran_at": None
    }
    footer = run.yaml.safe_load((build / "source" / "_config.yml").read_text())["html"]
    assert footer["extra_footer"].startswith('<p class="diffgen-build">Built from commit')
    assert record["date"] in footer["extra_footer"]
    assert (book / "_config.yml").read_text() == config  # the source stays as it is


def test_scorecard_page_runs_last():
    one, two, page = "notebooks/01_a.ipynb", "notebooks/02_b.ipynb", run.SCORECARD_NOTEBOOK
    available = [one, two, page]
    assert run.with_scorecard_page([two], available) == [two, page]
    assert run.with_scorecard_page([page, one], available) == [one, page]
    assert run.with_scorecard_page([page], available) == [page]
    assert run.with_scorecard_page([one], [one, two]) == [one]  # a book without the page


def _row(id, passed=True, chapter="01"):
    return {
        "id": id, "chapter": chapter, "measure": "m", "paper": None, "target": ">= 0", "measured":
        1.0, "profile": "book", "pass": passed, "checkpoints": []
    }


def test_book_run_fails_on_scorecard_regressions(book, capsys, monkeypatch):
    """Runs 01_good (recording G.one, which passes) twice at the book profile, with the real
    scorecard page (99) of the repository executed after it."""
    monkeypatch.setattr(run.data, "has_faces", lambda name="celeba": True)
    (book / "_toc.yml").write_text(TOC + "  - caption: Scorecard\n    chapters:\n"
                                   "      - file: notebooks/99_scorecard\n")
    page = nbformat.read(run.REPO_ROOT / run.SCORECARD_NOTEBOOK, as_version=4)
    nbformat.write(page, book / run.SCORECARD_NOTEBOOK)
    card = book / "_build" / "scorecard" / "book"
    card.mkdir(parents=True)
    (card / "01.json").write_text(json.dumps([_row("G.stale")]))  # replaced by the re-run
    (card / "03.json").write_text(json.dumps([_row("C.kept", chapter="03")]))  # not run: stays
    (book / "scorecard").mkdir()
    baseline = [
        _row("G.one"),
        _row("G.lost"),
        _row("G.miss", False, "03"),
        _row("C.kept", chapter="03"),
        _row("D.notrun", chapter="04")
    ]
    (book / "scorecard" / "book.json").write_text(json.dumps(baseline))

    assert run.main(["--profile", "book", "--notebooks", "01", "--no-build"], root=book) == 1
    out, err = capsys.readouterr()
    rows = json.loads((book / "_build" / "scorecard.json").read_text())
    assert [r["id"] for r in rows] == ["G.one", "C.kept"]
    assert "scorecard: 2 rows (2 pass / 0 fail / 0 reported; chapters 01, 03)" in out
    assert "not run: 1 (04/D.notrun)" in out
    regressions = [
        "01/G.lost: gone (in the baseline, not recorded now)",
        "03/G.miss: gone (in the baseline, not recorded now)",  # failed there too
        "chapter 01: 1 row, 2 in the baseline",
        "chapter 03: 1 row, 2 in the baseline"
    ]
    for text in (err, (book / "_build" / "FAILED").read_text()):
        assert "scorecard regressions" in text and all(r in text for r in regressions)
        assert "G.one" not in text and "D.notrun" not in text
    record = json.loads((book / "_build" / "run.json").read_text())
    assert record["status"] == "failed" and record["face_data"] is True
    assert record["scorecard"]["regressions"] == regressions
    # the scorecard page ran last and shows this run's rows
    assert record["notebooks"] == ["notebooks/01_good.ipynb", run.SCORECARD_NOTEBOOK]
    shown = nbformat.read(book / "_build" / "source" / run.SCORECARD_NOTEBOOK, as_version=4)
    html = "".join(
        o.get("data", {}).get("text/html", "") for c in shown.cells if c.cell_type == "code"
        for o in c.outputs)
    assert '<a href="01_good.html">01 01_good</a>' in html and "G.<wbr>one" in html
    assert "✓" in html
    assert "Chapter 03" in html and "stale" not in html

    # accepting the run makes the next one pass
    assert run.main(["--profile", "book", "--update-baseline"], root=book) == 0
    assert json.loads((book / "scorecard" / "book.json").read_text()) == rows
    assert run.main(["--profile", "book", "--notebooks", "01", "--no-build"], root=book) == 0
    assert "regressions: 0" in capsys.readouterr().out


def test_update_baseline_needs_a_finished_book_run(book, capsys):
    with pytest.raises(SystemExit):
        run.main(["--profile", "smoke", "--update-baseline"], root=book)
    assert "only the book profile has a baseline" in capsys.readouterr().err
    assert run.main(["--profile", "book", "--update-baseline"], root=book) == 1
    assert "no _build/scorecard.json" in capsys.readouterr().err
    (book / "_build").mkdir()
    (book / "_build" / "scorecard.json").write_text(json.dumps([_row("G.one")]))
    (book / "_build" / "run.json").write_text(json.dumps({"profile": "smoke", "status": "ok"}))
    assert run.main(["--profile", "book", "--update-baseline"], root=book) == 1
    assert "not a finished book run" in capsys.readouterr().err
    assert not (book / "scorecard").exists()


def test_book_run_without_face_data_runs_face_chapters_on_the_stand_in(book, capsys, monkeypatch):
    """A chapter that needs faces runs at smoke on the stand-in, with a note and no rows; the
    gate compares only the chapters that recorded rows."""
    monkeypatch.setattr(run.data, "has_faces", lambda name="celeba": False)
    path = book / "notebooks" / "01_good.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["diffgen"] = {"needs": {"data": ["celeba"]}}
    nbformat.write(nb, path)
    (book / "scorecard").mkdir()
    (book / "scorecard" / "book.json").write_text(json.dumps([_row("G.one")]))
    assert run.main(["--profile", "book", "--notebooks", "01", "--no-build"], root=book) == 0
    assert "01_good.ipynb: running (smoke, cpu)" in capsys.readouterr().out
    page = nbformat.read(book / "_build" / "source" / "notebooks" / "01_good.ipynb", as_version=4)
    assert run.NOTE_TAG in page.cells[1].metadata["tags"]
    assert "No celeba data was found" in page.cells[1].source
    assert run.SMOKE_NOTE in page.cells[1].source
    printed = next(c for c in page.cells if c.source.startswith("import os, pathlib"))
    assert printed.outputs[0]["text"].startswith("smoke cpu 1")
    assert json.loads((book / "_build" / "scorecard.json").read_text()) == []
    record = json.loads((book / "_build" / "run.json").read_text())
    assert record["substituted"] == {"notebooks/01_good.ipynb": "smoke"}
    assert record["scorecard"]["regressions"] == []


def test_plan_chapter_decides_before_the_chapter_runs(monkeypatch):
    monkeypatch.setattr(run.data, "has_faces", lambda name="celeba": name == "celeba")
    assert run.plan_chapter({}, "book") == run.ChapterPlan("book")
    assert run.plan_chapter({"data": ["celeba"]},
                            "smoke") == run.ChapterPlan("smoke", [run.SMOKE_NOTE])
    plan = run.plan_chapter({"data": ["fer2013"]}, "paper")  # paper trains on the stand-in
    assert plan.profile == "paper" and not plan.scorecard and "No fer2013 data" in plan.notes[0]
    monkeypatch.setattr(run.zoo, "missing",
                        lambda names, p: {names[0]: "missing", names[1]: "at step 5 of 10"})
    with pytest.raises(run.ModelsMissing) as failure:
        run.plan_chapter({"families": ["manifolds"]}, "book")
    assert "disks-N20000: missing\n  ray-N20000: at step 5 of 10" in str(failure.value)
    assert ("python -m diffgen_utils.train --profile book --only disks-N20000 ray-N20000"
            in str(failure.value))


def test_the_chapters_declare_what_they_need():
    known = {"data": {"celeba", "fer2013"}, "families": set(run.families.FAMILIES)}
    for nb in run.toc_notebooks(REPO_ROOT):
        needs = run.chapter_needs(REPO_ROOT / nb)
        if nb == run.SCORECARD_NOTEBOOK:
            assert needs == {}
            continue
        assert needs.keys() == known.keys(), nb
        assert all(set(needs[k]) <= known[k] for k in known), nb


def test_kernels_import_the_runners_package(book, tmp_path, monkeypatch):
    """Whatever else is on the path (a decoy here; a re-pointed editable install in CI), the
    kernel imports this checkout's diffgen_utils."""
    decoy = tmp_path / "decoy" / "diffgen_utils"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(decoy.parent))
    _notebook(
        book / "notebooks" / "01_good.ipynb", "import diffgen_utils, pathlib\n"
        "print('PKG', pathlib.Path(diffgen_utils.__file__).parent)")
    run.run_book("smoke", ["notebooks/01_good.ipynb"], "cpu", build=False, root=book)
    out = nbformat.read(book / "_build" / "source" / "notebooks" / "01_good.ipynb", as_version=4)
    printed = "".join(
        o.get("text", "") for c in out.cells if c.cell_type == "code"
        for o in c.get("outputs", []))
    assert f"PKG {Path(run.__file__).resolve().parents[1]}" in printed


def test_the_sphinx_build_imports_the_runners_package(monkeypatch):
    """The jupyter-book subprocess loads diffgen_utils.book.book_sphinx from this checkout."""
    monkeypatch.setenv("PYTHONPATH", "elsewhere")
    assert run._this_package_first().split(os.pathsep) == [str(REPO_ROOT), "elsewhere"]


def test_update_baseline_accepts_rows_waiting_for_models_but_no_unmeasured_row(book, capsys):
    (book / "_build").mkdir()
    run_record = {"profile": "book", "status": "ok", "face_data": True}
    (book / "_build" / "run.json").write_text(json.dumps(run_record))
    waiting = {
        **_row("F15.ratio", passed=None), "measured": None, "missing":
        "no 40x40 model at N = 100 yet"
    }
    (book / "_build" / "scorecard.json").write_text(json.dumps([_row("G.one"), waiting]))
    assert run.main(["--profile", "book", "--update-baseline"], root=book) == 0
    assert json.loads((book / "scorecard" / "book.json").read_text())[1] == waiting
    unmeasured = {k: v for k, v in waiting.items() if k != "missing"}
    (book / "_build" / "scorecard.json").write_text(json.dumps([_row("G.one"), unmeasured]))
    assert run.main(["--profile", "book", "--update-baseline"], root=book) == 1
    assert "rows measured NaN or None" in capsys.readouterr().err
