"""Scorecard rows: pass semantics, recording, collecting, the regression gate and the page."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from diffgen_utils.book import scorecard as sc


def row(id, chapter="02", passed=True, **kw):
    base = {
        "id": id, "chapter": chapter, "measure": f"measure {id}", "paper": None, "target": ">= 0",
        "measured": 1.0, "profile": "book", "pass": passed, "checkpoints": []
    }
    return {**base, **kw}


@pytest.mark.parametrize("target, measured, expected", [
    (None, 3.0, None),
    (None, None, None),
    (">= 5", 5.0, True),
    (">= 5", 4.99, False),
    ("  >=5 ", 6.0, True),
    ("<= 0.5", 0.5, True),
    ("<= 0.5", 0.51, False),
    ("<= -1e-3", -0.01, True),
    ("within 0.1 of 1", 1.05, True),
    ("within 0.1 of 1", 0.85, False),
    ("within 2 of -3", -1.5, True),
    (">= 5", math.nan, False),
    ("<= 5", math.inf, False),
    (">= 5", None, False),
    ("> 0", 0.0, False),
    ("> 0", 1e-9, True),
    ("< 1", 1.0, False),
    ("< 1", 0.5, True),
])
def test_passes(target, measured, expected):
    assert sc.passes(target, measured) is expected


@pytest.mark.parametrize("target", [">> 5", "== 1", "about 3", "within of 2"])
def test_passes_rejects_unknown_targets(target):
    with pytest.raises(ValueError, match="is not"):
        sc.passes(target, 1.0)


def test_record_without_scorecard_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFGEN_SCORECARD_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    r = sc.record("A.x", chapter="02", measure="gap (dB)", measured=6, profile="book",
                  target=">= 5", paper="large", checkpoints=["m1"])
    assert r == {
        "id": "A.x", "chapter": "02", "measure": "gap (dB)", "paper": "large", "target": ">= 5",
        "measured": 6.0, "profile": "book", "pass": True, "checkpoints": ["m1"]
    }
    assert list(tmp_path.iterdir()) == []


def test_record_with_scorecard_dir_writes_and_replaces(tmp_path, monkeypatch):
    folder = tmp_path / "card" / "book"
    monkeypatch.setenv("DIFFGEN_SCORECARD_DIR", str(folder))
    sc.record("A.x", chapter="02", measure="m", measured=1, profile="book", target=">= 5")
    sc.record("A.y", chapter="02", measure="m", measured=2, profile="book")
    sc.record("A.x", chapter="02", measure="m", measured=7, profile="book", target=">= 5")
    sc.record("B.z", chapter="03", measure="m", measured=0.1, profile="book", paper=0.12,
              target="within 0.05 of 0.12")
    rows = json.loads((folder / "02.json").read_text())
    assert [(r["id"], r["measured"], r["pass"]) for r in rows] == [("A.y", 2.0, None),
                                                                   ("A.x", 7.0, True)]
    assert sorted(p.name for p in folder.iterdir()) == ["02.json", "03.json"]
    assert sc.folder("book") == folder
    collected = sc.collect(folder)
    assert [r["id"] for r in collected] == ["A.y", "A.x", "B.z"]
    assert collected[-1]["paper"] == 0.12 and collected[-1]["pass"] is True


def test_folder_defaults_to_the_runner_folder(monkeypatch):
    from diffgen_utils.config import REPO_ROOT

    monkeypatch.delenv("DIFFGEN_SCORECARD_DIR", raising=False)
    assert sc.folder("smoke") == REPO_ROOT / "_build" / "scorecard" / "smoke"


def test_collect(tmp_path):
    assert sc.collect(tmp_path / "missing") == []
    (tmp_path / "03.json").write_text(json.dumps([row("C", "03")]))
    (tmp_path / "01.json").write_text(json.dumps([{**row("A", "01"), "extra": 1}, row("B", "01")]))
    (tmp_path / "01.json.tmp").write_text("half-written")
    rows = sc.collect(tmp_path)
    assert [r["id"] for r in rows] == ["A", "B", "C"]
    assert list(rows[0]) == list(sc.FIELDS)  # only the scorecard's fields, in order


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ("{}", "not a list"),
    (json.dumps([{"id": "A", "chapter": "01"}]), "row 'A' lacks measure"),
])
def test_collect_rejects_malformed_files(tmp_path, text, message):
    (tmp_path / "01.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        sc.collect(tmp_path)


def test_counts_and_summary():
    rows = [row("a"), row("b", passed=False), row("c", passed=None), row("d")]
    assert sc.counts(rows) == {"pass": 2, "fail": 1, "reported": 1}
    assert sc.summary(rows) == "2 pass / 1 fail / 1 reported"


def test_missing_rows_count_apart_and_show_what_they_wait_for(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFGEN_SCORECARD_DIR", str(tmp_path))
    waiting = sc.record("Fig15.gap_ratio_N100", chapter="generalization", measure="m",
                        measured=None, profile="book", target=">= 1.5",
                        missing="no 40x40 model at N = 100")
    assert waiting["pass"] is None and waiting["missing"] == "no 40x40 model at N = 100"
    assert sc.collect(tmp_path)[0]["missing"] == waiting["missing"]  # kept when collected
    rows = [row("a"), row("b", passed=None), waiting]
    assert sc.counts(rows) == {"pass": 1, "fail": 0, "reported": 1, "missing": 1}
    assert sc.summary(rows) == "1 pass / 0 fail / 1 reported / 1 missing"
    text = str(sc.text_table([waiting]))
    assert "missing: no 40x40 model at N = 100" in text and "report" not in text
    assert "missing: no 40x40 model" in sc.text_table([waiting])._repr_html_()
    with pytest.raises(ValueError, match="a missing row has no measured value"):
        sc.record("x", chapter="c", measure="m", measured=1.0, profile="book", missing="why")


def test_gate_accepts_a_missing_row_but_not_one_that_passed_before():
    missing = row("F15.r", measured=None, passed=None, missing="no model")
    assert sc.compare([], [missing]).ok  # declared missing: not an unmeasured value
    assert not sc.compare([], [row("F15.r", measured=None, passed=None)]).ok
    before = sc.compare([row("F15.r")], [missing])
    assert not before.ok and "passed, reported only now" in before.regressions[0]
    assert sc.compare([missing], [row("F15.r")]).ok  # the models landed


BASELINE = [
    row("kept"),
    row("miss", passed=False, target=">= 2"),
    row("fixed", passed=False, target=">= 2", measured=1.0),
    row("reported", passed=None, target=None, measured=0.5),
    row("other", chapter="05")
]


def test_compare_an_unchanged_run_and_a_new_row_pass():
    assert sc.compare(BASELINE, BASELINE).ok
    current = BASELINE + [row("new", passed=False, target=">= 2"), row("n5", chapter="05")]
    result = sc.compare(BASELINE, current)
    assert result.ok and result.regressions == []
    assert result.new == ["02/new", "05/n5"]
    assert result.known_misses == ["02/miss", "02/fixed"]
    assert result.report() == ("regressions: 0\nknown misses: 2 (02/miss, 02/fixed)\n"
                               "new: 2 (02/new, 05/n5)")


def test_compare_lists_fixed_rows_and_drifted_reported_values_without_failing():
    current = [
        row("kept"),
        row("miss", passed=False, target=">= 2"),
        row("fixed", target=">= 2", measured=3.0),
        row("reported", passed=None, target=None, measured=0.75),
        row("other", chapter="05")
    ]
    result = sc.compare(BASELINE, current)
    assert result.ok
    assert result.fixed == ["02/fixed"]
    assert result.drifted == ["02/reported 0.5 -> 0.75"]
    assert "drifted: 1 (02/reported 0.5 -> 0.75)" in result.report()


@pytest.mark.parametrize("passed", [True, False, None])
def test_compare_fails_on_any_gone_row(passed):
    baseline = [row("kept"), row("lost", passed=passed), row("more")]
    current = [row("kept"), row("more"), row("renamed")]  # same count: only the gone row fails
    result = sc.compare(baseline, current)
    assert result.regressions == ["02/lost: gone (in the baseline, not recorded now)"]
    assert "02/lost: gone" in result.report()


def test_compare_fails_on_a_changed_target():
    loosened = [r if r["id"] != "kept" else row("kept", target=">= -1") for r in BASELINE]
    assert sc.compare(BASELINE, loosened).regressions == [
        "02/kept: target changed ('>= 0' in the baseline, '>= -1' now)"
    ]
    # a target given to a reported-only row, or taken from a passing one, is a change too
    targeted = [row("r", passed=True, target=">= 0")]
    assert sc.compare([row("r", passed=None, target=None)], targeted).regressions == [
        "02/r: target changed (None in the baseline, '>= 0' now)"
    ]
    untargeted = sc.compare([row("r")], [row("r", passed=None, target=None)]).regressions
    assert untargeted == [
        "02/r: target changed ('>= 0' in the baseline, None now); passed, "
        "reported only now (measured 1, target None)"
    ]


@pytest.mark.parametrize("measured, shown", [(math.nan, "nan"), (None, "None")])
def test_compare_fails_on_an_unmeasured_row(measured, shown):
    current = [r if r["id"] != "reported" else {**r, "measured": measured} for r in BASELINE]
    assert sc.compare(BASELINE, current).regressions == [f"02/reported: measured {shown}"]
    # a new row too, and a failing row stays one entry with both reasons
    new = BASELINE + [row("new", passed=None, target=None, measured=measured)]
    assert sc.compare(BASELINE, new).regressions == [f"02/new: measured {shown} (a new row)"]
    broke = [
        r if r["id"] != "kept" else row("kept", passed=False, measured=measured) for r in BASELINE
    ]
    assert sc.compare(BASELINE, broke).regressions == [
        f"02/kept: measured {shown}; passed, fails now (measured {shown}, target >= 0)"
    ]


def test_compare_fails_on_a_chapter_with_fewer_rows():
    baseline = BASELINE + [row("extra", chapter="05")]
    current = [r for r in baseline if r["id"] != "extra"]
    assert sc.compare(baseline, current).regressions == [
        "05/extra: gone (in the baseline, not recorded now)",
        "chapter 05: 1 row, 2 in the baseline"
    ]
    # every row of a chapter gone, in a run of all chapters
    result = sc.compare(baseline, [r for r in baseline if r["chapter"] != "05"])
    assert result.regressions[-1] == "chapter 05: 0 rows, 2 in the baseline"


def test_compare_fails_on_a_row_that_passed_and_fails_now():
    broke = [
        r if r["id"] != "kept" else row("kept", passed=False, measured=-1.0) for r in BASELINE
    ]
    result = sc.compare(BASELINE, broke)
    assert result.regressions == ["02/kept: passed, fails now (measured -1, target >= 0)"]
    assert not result.ok and "02/kept: passed, fails now" in result.report()


def test_compare_of_a_subset_run_leaves_chapters_that_did_not_run():
    current = [r for r in BASELINE if r["chapter"] == "02"]
    result = sc.compare(BASELINE, current, chapters={"02"})
    assert result.ok and result.not_run == ["05/other"]
    assert "not run: 1 (05/other)" in result.report()
    # ... unless the chapter ran and lost its rows, or no chapter list is given
    for chapters in ({"02", "05"}, None):
        assert sc.compare(BASELINE, current, chapters).regressions == [
            "05/other: gone (in the baseline, not recorded now)",
            "chapter 05: 0 rows, 1 in the baseline"
        ]


def test_write_json_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = sc.write_json(tmp_path / "sub" / "card.json", [row("a")])
    assert json.loads(path.read_text()) == [row("a")]
    assert [p.name for p in path.parent.iterdir()] == ["card.json"]

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(sc.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        sc.write_json(path, [row("b")])
    assert json.loads(path.read_text()) == [row("a")]  # the old file is intact
    assert [p.name for p in path.parent.iterdir()] == ["card.json"]


def _finished_run(root, face_data, rows):
    from diffgen_utils.book import run

    build = root / "_build"
    build.mkdir()
    (build / "scorecard.json").write_text(json.dumps(rows))
    record = {"profile": "book", "status": "ok", "data_dir": "/nowhere"}
    if face_data is not None:
        record["face_data"] = face_data
    (build / "run.json").write_text(json.dumps(record))
    return run


@pytest.mark.parametrize(
    "face_data, message",
    [
        (False, "had no face data (no CelebA images in /nowhere/celeba80)"),
        (None, "does not record whether it had face data"),  # a record from before face_data
    ])
def test_update_baseline_refuses_a_run_without_face_data(tmp_path, face_data, message):
    run = _finished_run(tmp_path, face_data, [row("a")])
    with pytest.raises(run.RunFailed, match="set DIFFGEN_DATA to the data folder") as err:
        run.update_baseline("book", root=tmp_path)
    assert message in str(err.value)
    assert not (tmp_path / "scorecard").exists()


def test_update_baseline_refuses_unmeasured_rows_and_writes_a_run_with_face_data(tmp_path):
    run = _finished_run(tmp_path, True,
                        [row("a"), row("b", passed=None, target=None, measured=math.nan)])
    with pytest.raises(run.RunFailed, match="NaN or None.*02/b"):
        run.update_baseline("book", root=tmp_path)
    rows = [row("a"), row("b", passed=None, target=None)]
    (tmp_path / "_build" / "scorecard.json").write_text(json.dumps(rows))
    path = run.update_baseline("book", root=tmp_path)
    assert path == tmp_path / "scorecard" / "book.json" and json.loads(path.read_text()) == rows
    assert [p.name for p in path.parent.iterdir()] == ["book.json"]


def test_text_table():
    rows = [{"id": "F6.x", "paper": None, "target": "<= 1e-4", "measured": 1e-7, "pass":
             True}, {"id": "F3.y", "paper": 1.2, "target": None, "measured": 1.1, "pass": False},
            {"id": "A1.z", "paper": "about 100", "target": None, "measured": 58.0, "pass": None}]
    table = sc.text_table(rows)
    header, first, second, third = table.splitlines()
    assert header.split() == ["id", "paper", "target", "measured"]
    assert first.split() == ["F6.x", "-", "<=", "1e-4", "1e-07", "✓"]
    assert second.split() == ["F3.y", "1.2", "-", "1.1", "✗"]
    assert third.split() == ["A1.z", "about", "100", "-", "58", "report"]
    assert sc.text_table([], empty="nothing") == "nothing"


def test_text_table_shows_as_html_in_a_notebook():
    rows = [
        row("Fig5.lambda_9", paper=0.278, target="within 0.0278 of 0.278", measured=0.99,
            passed=False, measure="lambda <9>"),
        row("Fig5.disk_rank_growth", passed=None, target=None, measured=166.75)
    ]
    page = sc.text_table(rows)._repr_html_()
    assert page.startswith('<div style="overflow-x:auto">')  # scrolls, never widens the column
    assert page.count("<tr>") == 3 and "✗" in page and "—" in page
    assert "Fig5.<wbr>lambda_<wbr>9" in page and 'title="lambda &lt;9&gt;"' in page
    assert "none: no count in the paper" in page  # a row without a target says why
    assert "nothing" in sc.text_table([], empty="nothing")._repr_html_()


def test_chapter_titles(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[
        new_code_cell("x = 1"),
        new_markdown_cell("Intro\n# Memorization and *generalization*\n")
    ])
    nbformat.write(nb, tmp_path / "02_memo.ipynb")
    nbformat.write(new_notebook(cells=[]), tmp_path / "03_empty.ipynb")
    (tmp_path / "notes.ipynb").write_text("{}")
    nbformat.write(new_notebook(cells=[new_markdown_cell("# Harmonic")]),
                   tmp_path / "04_harmonic_bases.ipynb")
    assert sc.chapter_titles(tmp_path) == {
        "02": ("Memorization and *generalization*", "02_memo.html"), "03":
        ("03_empty", "03_empty.html"), "harmonic": ("Harmonic", "04_harmonic_bases.html")
    }  # a declared chapter: its slug


def test_format_value():
    assert sc.format_value(None) == "—"
    assert sc.format_value(0.123456) == "0.1235"
    assert sc.format_value(13000) == "13000" and sc.format_value(2.0) == "2"
    assert sc.format_value(1.5e-5) == "1.5e-05"
    assert sc.format_value(math.nan) == "nan" and sc.format_value(-math.inf) == "-inf"
    assert sc.format_value("about 0.9") == "about 0.9"


def test_table_html():
    rows = [
        row("F1.gap", measure="train - test PSNR <dB>", paper=12.5, target=">= 5", measured=11.04,
            checkpoints=["celeba-N10-S1", "celeba-N10-S2"]),
        row("F2.sim", passed=False, target="<= 0.6", measured=0.93, checkpoints=["celeba-N10-S1"]),
        row("F3.note", chapter="03", passed=None, target=None, paper="qualitative")
    ]
    page = sc.table_html(rows, {"02": ("Memorization", "02_memo.html")})
    assert '<a href="02_memo.html">02 Memorization</a>' in page
    assert "Chapter 03" in page  # no title known
    assert "train - test PSNR &lt;dB&gt;" in page  # escaped
    assert page.count("<table") == 2 and page.count("<tr>") == 2 + 3
    assert "✓" in page and "✗" in page and "—" in page
    assert "<code>celeba-N10-S1</code>, <code>celeba-N10-S2</code>" in page  # each once
    assert "profile <code>book</code>" in page
    assert "Other rows:</strong> 3 rows, 1 pass / 1 fail / 1 reported" in page
    for value in ("12.5", "11.04", "0.93", "qualitative", "&gt;= 5"):
        assert value in page
    assert "No chapter has recorded" in sc.table_html([])


def test_passes_returns_a_plain_bool_for_numpy_measurements():
    import numpy as np

    result = sc.passes(">= 2", np.float32(3.0))
    assert result is True and type(result) is bool


# ---------------------------------------------------------------- ids, rules and the headline
def test_record_files_an_old_id_under_its_new_one_with_its_rules_target(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFGEN_SCORECARD_DIR", str(tmp_path))
    r = sc.record("F5.lambda_5", chapter="05", measure="m", measured=0.7, profile="book",
                  paper=0.674)
    assert (r["id"], r["target"], r["pass"]) == ("Fig5.lambda_5", "within 0.0674 of 0.674", True)
    assert [x["id"] for x in json.loads((tmp_path / "05.json").read_text())] == ["Fig5.lambda_5"]
    miss = sc.record("Fig5.lambda_5", chapter="05", measure="m", measured=0.99, profile="book",
                     paper=0.674)
    assert miss["pass"] is False  # a miss is a miss, not a reported row
    with pytest.raises(ValueError, match="figures.RULES gives 'within 0.0674 of 0.674'"):
        sc.record("Fig5.lambda_5", chapter="05", measure="m", measured=0.7, profile="book",
                  paper=0.674, target="<= 0.9")
    preset = sc.record("F5.lambda_9", chapter="05", measure="m", measured=0.35, profile="book",
                       paper=0.278, target="<= 0.5")  # set before training: the chapter's
    assert (preset["id"], preset["target"], preset["pass"]) == ("Fig5.lambda_9", "<= 0.5", True)


def test_compare_takes_the_baseline_under_the_new_ids():
    old = [
        row("F5.tangent_overlap", chapter="05", target="within 0.1 of 1", measured=0.3,
            passed=False),
        row("F5.cone_tangent_overlap", chapter="05", target="within 0.1 of 1")
    ]
    new = [
        row("Fig5.tangent_overlap", chapter="manifolds", target="within 0.1 of 1", measured=0.3,
            passed=False),
        row("Fig20.tangent_overlap", chapter="manifolds", target="within 0.1 of 1")
    ]
    result = sc.compare(old, new, chapters={"manifolds"})
    assert result.ok and result.known_misses == ["manifolds/Fig5.tangent_overlap"]
    assert result.new == [] and result.not_run == []
    # the new row must still pass where the old one passed
    broke = [new[0], {**new[1], "measured": 0.5, "pass": False}]
    assert sc.compare(old, broke).regressions == [
        "manifolds/Fig20.tangent_overlap: passed, fails now (measured 0.5, target within 0.1 "
        "of 1)"
    ]


def test_compare_fails_on_an_old_id_that_no_mapping_knows():
    old = [row("F9.unknown", chapter="05"), row("F5.tangent_overlap", chapter="05")]
    new = [row("Fig5.tangent_overlap", chapter="manifolds"), row("Fig5.other", "manifolds")]
    assert sc.compare(old, new).regressions == [
        "05/F9.unknown: gone (in the baseline, not recorded now)",
        "chapter 05: 0 rows, 1 in the baseline"
    ]


def test_migrated_keeps_the_measured_value_and_recomputes_the_verdict():
    old = row("F3.lambda_245", chapter="03", paper=0.51, target=None, passed=None, measured=0.91)
    new = sc.migrated(old)
    assert (new["id"], new["chapter"], new["target"], new["pass"],
            new["measured"]) == ("Fig3.lambda_245", "harmonic", "within 0.051 of 0.51", False,
                                 0.91)
    kept = sc.migrated(row("F1.gap_N10", chapter="02", target=">= 5", measured=13.0))
    assert (kept["id"], kept["target"], kept["pass"]) == ("Fig1.gap_N10", ">= 5", True)


def test_the_headline_counts_claims_apart_from_controls_and_identities():
    rows = [
        row("Fig1.gap_N10"),
        row("Fig2.x", passed=False),
        row("Fig1.gap_N10_2blocks"),
        row("Fig2.x_2blocks"),
        row("check.homogeneity"),
        row("check.bias_free_identity"),
        row("check.sampler_steps", passed=None, target=None)
    ]
    groups = sc.by_kind(rows)
    assert {k: len(v)
            for k, v in groups.items()} == {"claim": 2, "control": 2, "identity": 2, "check": 1}
    text = sc.headline_html(rows)
    assert text.startswith("<p><strong>Claims tested on the chapters&#x27; own networks:"
                           "</strong> 2 rows, 1 pass / 1 fail / 0 reported.")
    assert "Counted apart: controls (the depth-control network), 2 rows, 2 pass" in text
    assert "identities that hold by construction, 2 rows, 2 pass" in text


def test_collect_takes_rows_of_an_earlier_run_under_the_current_ids_and_targets(tmp_path):
    (tmp_path / "05.json").write_text(
        json.dumps([
            row("F5.lambda_5", chapter="05", paper=0.674, target=None, measured=0.35, passed=None)
        ]))
    (tmp_path / "manifolds.json").write_text(
        json.dumps([row("Fig19.first_eigvec", chapter="manifolds")]))
    rows = sc.collect(tmp_path)
    assert [(r["chapter"], r["id"], r["target"], r["pass"]) for r in rows] == [
        ("manifolds", "Fig5.lambda_5", "within 0.0674 of 0.674", False),
        ("manifolds", "Fig19.first_eigvec", ">= 0", True)
    ]  # rows under new ids: as recorded


# ---------------------------------------------------------------------------- uncertainty


def test_record_stores_an_interval_and_a_spread_only_when_given(tmp_path, monkeypatch):
    folder = tmp_path / "card"
    monkeypatch.setenv("DIFFGEN_SCORECARD_DIR", str(folder))
    r = sc.record("A.x", chapter="02", measure="m", measured=0.85, profile="book", target=">= 0.8",
                  interval=(np.float32(0.8), 0.875), spread=np.float64(0.02))
    assert r["interval"] == [pytest.approx(0.8), 0.875] and r["spread"] == 0.02
    assert type(r["interval"][0]) is float and type(r["spread"]) is float
    rows = sc.record_all([{"id": "A.y", "measure": "m", "measured": 1.0, "interval": [0, 2]},
                          {"id": "A.z", "measure": "m", "measured": 1.0}], "02", "book")
    assert rows[0]["interval"] == [0.0, 2.0] and "spread" not in rows[0]
    assert "interval" not in rows[1] and "spread" not in rows[1]
    stored = {x["id"]: x for x in json.loads((folder / "02.json").read_text())}
    assert stored["A.x"]["interval"] == r["interval"] and stored["A.x"]["spread"] == 0.02
    assert set(stored["A.z"]) == set(sc.FIELDS)
    with pytest.raises(ValueError, match="swapped"):
        sc.record("A.w", chapter="02", measure="m", measured=1.0, profile="book",
                  interval=(2.0, 1.0))


def test_collect_keeps_the_uncertainty_and_loads_rows_without_it(tmp_path):
    (tmp_path / "02.json").write_text(
        json.dumps([row("old"), {**row("new"), "interval": [0.5, 1.5], "spread": 0.1, "extra":
                                 1}]))
    old, new = sc.collect(tmp_path)
    assert list(old) == list(sc.FIELDS)
    assert list(new) == list(sc.FIELDS) + ["interval", "spread"]
    assert new["interval"] == [0.5, 1.5] and new["spread"] == 0.1


def test_compare_ignores_intervals_and_spreads():
    baseline = [
        row("gated"),
        row("reported", passed=None, target=None, measured=0.5),
        {**row("moved"), "interval": [0.9, 1.1], "spread": 0.01}
    ]
    current = [{**row("gated"), "interval": [0.2, 3.0], "spread": 0.5},
               {**row("reported", passed=None, target=None, measured=0.5), "interval": [0.1, 0.9]},
               row("moved")]  # the interval and spread are gone
    result = sc.compare(baseline, current)
    assert result.ok and result.regressions == [] and result.drifted == []
    assert sc.compare(current, baseline).ok


def test_interval_text_resolves_the_width():
    assert sc.interval_text(0.7981, 0.8823) == "[0.80, 0.88]"
    assert sc.interval_text(13.46, 14.12) == "[13.5, 14.1]"
    assert sc.interval_text(10.5, 11.6) == "[10.5, 11.6]"
    assert sc.interval_text(-0.0145, 0.2909) == "[0.0, 0.3]"  # no "-0.0"
    assert sc.interval_text(-0.32, -0.28) == "[-0.32, -0.28]"
    assert sc.interval_text(58.0, 66.0) == "[58, 66]"
    assert sc.interval_text(120.0, 180.0) == "[120, 180]"
    assert sc.interval_text(0.25, 0.25) == "[0.25, 0.25]"
    assert sc.interval_text(1.2e-7, 3.4e-7) == "[1.2e-07, 3.4e-07]"


def test_text_table_shows_the_uncertainty_beside_the_value():
    rows = [{
        **row("Fig2.pair", target=">= 0.8", measured=0.84762), "interval": [0.7981, 0.8823],
        "spread": 0.0123
    }, {**row("Fig1.gap", target=">= 5", measured=13.78), "interval": [13.46, 14.12]},
            row("check.identity", target="<= 1e-4", measured=2e-7)]
    lines = sc.text_table(rows).splitlines()
    assert lines[1].split()[-5:] == ["0.8476", "[0.80,", "0.88]", "Δ0.012", "✓"]
    assert lines[2].split()[-4:] == ["13.78", "[13.5,", "14.1]", "✓"]
    assert lines[3].split()[-2:] == ["2e-07", "✓"]  # nothing to resample: the value alone
    assert lines[-1] == sc.uncertainty_legend(rows)
    assert "5%-95% bootstrap" in lines[-1] and "Δ: |S1 − S2|" in lines[-1]
    assert "Δ" not in sc.text_table(rows[1:]).splitlines()[-1]  # no spread, no note on it
    assert len(sc.text_table(rows[2:]).splitlines()) == 2  # no legend without an interval
    page = sc.text_table(rows)._repr_html_()
    assert "0.8476 <small" in page and "[0.80, 0.88] Δ0.012</small>" in page
    assert "[13.5, 14.1]</small>" in page and page.count("<small style") == 2


def test_table_html_shows_the_uncertainty_beside_the_value():
    rows = [{**row("F1.gap", measured=11.04), "interval": [10.5, 11.6], "spread": 0.3},
            row("F2.sim", measured=0.93)]
    page = sc.table_html(rows)
    assert "11.04 <small" in page and "[10.5, 11.6] Δ0.3</small>" in page
    assert f'title="{sc.uncertainty_legend(rows[:1])}"' in page
    assert '<td style="text-align:right">0.93</td>' in page


def test_chapter_01s_rows_record_the_steps_median_with_its_interval(monkeypatch):
    from diffgen_utils.chapters import denoisers
    from diffgen_utils.sampling import SamplerSettings

    monkeypatch.delenv("DIFFGEN_SCORECARD_DIR", raising=False)
    steps = np.array([58, 60, 61, 62, 62, 63, 65, 70, 59, 61, 64, 90])
    rows = sc.record_all(denoisers.scorecard_measurements("m", 2e-7, steps, SamplerSettings()),
                         "01", "book")
    homogeneity, median = rows
    assert "interval" not in homogeneity  # a by-construction maximum: nothing to resample
    assert median["measured"] == 62.0  # torch's median: the lower middle value
    lo, hi = median["interval"]
    assert 59 <= lo < 62 < hi <= 65 and median["pass"] is True
