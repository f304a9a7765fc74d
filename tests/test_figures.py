"""The mapping from scorecard rows to the paper's figures: verdicts, tolerance rules, renamed ids,
the accepted baseline's consistency with them, and what the runner shows from them."""
from __future__ import annotations

import html
import json
import re

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from diffgen_utils.book import figures as fg
from diffgen_utils.book import run
from diffgen_utils.book import scorecard as sc
from diffgen_utils.config import REPO_ROOT, get_profile

BASELINE = json.loads((REPO_ROOT / "scorecard" / "book.json").read_text())


def row(id, passed=True, target=">= 0", paper=None, measured=1.0, chapter="manifolds"):
    return {
        "id": id, "chapter": chapter, "measure": "m", "paper": paper, "target": target, "measured":
        measured, "profile": "book", "pass": passed, "checkpoints": []
    }


# ---------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize(
    "passes, expected",
    [
        ([True, True], fg.REPRODUCED),
        ([True, None], fg.REPRODUCED),  # every gated row passes
        ([True, False], fg.PARTLY),
        ([None, None], fg.PARTLY),  # report rows only
        ([False, None], fg.NOT_REPRODUCED),
        ([False, False], fg.NOT_REPRODUCED),
    ])
def test_verdict(passes, expected):
    rows = [row(f"Fig5.r{i}", passed=p) for i, p in enumerate(passes)]
    assert fg.verdict(rows) == expected


def test_rows_waiting_for_models_keep_a_figure_from_reproduced():
    waiting = {**row("Fig15.b", passed=None, measured=None), "missing": "no 40x40 model"}
    assert fg.verdict([waiting]) == fg.AWAITING
    assert fg.reason(fg.FIGURES[0], [waiting]) == "waiting for models: no 40x40 model"
    both = [row("Fig15.a"), waiting]
    assert fg.verdict(both) == fg.PARTLY
    assert "1 row waiting for models (b)" in fg.reason(fg.FIGURES[0], both)
    assert fg.verdict([row("Fig15.a", passed=False), waiting]) == fg.NOT_REPRODUCED


def test_verdict_without_rows_and_with_controls():
    assert fg.verdict([]) == fg.ABSENT
    assert fg.verdict([], shown=True) == fg.NOT_SCORED
    # the chapter's own network decides; the depth control is shown beside it
    mixed = [row("Fig2.a", passed=False), row("Fig2.a_2blocks"), row("Fig2.b_2blocks")]
    assert fg.verdict(mixed) == fg.NOT_REPRODUCED
    assert "depth control: 2 of 2 pass" in fg.reason(fg.FIGURES[1], mixed)


def test_reason_states_the_comparison():
    fig5 = next(f for f in fg.FIGURES if f.key == "Fig5")
    rows = [
        row("Fig5.tangent_overlap", passed=False, target="within 0.1 of 1", measured=0.27),
        row("Fig5.lambda_0", target="within 0.1177 of 1.177", measured=1.09)
    ]
    assert fg.reason(fig5, rows) == ("1 of 2 gated rows pass; misses: tangent_overlap 0.27 "
                                     "(target within 0.1 of 1)")
    reported = [row("Fig5.x", passed=None, target=None, paper=0.41, measured=0.74)]
    assert fg.reason(fig5, reported) == "no target; reported: x 0.74 (paper 0.41)"
    assert fg.reason(fig5, []) == "shown in the chapter; no scorecard row tests it"
    absent = fg.Figure("Fig9", "LSUN", None, missing="LSUN is not available offline")
    assert fg.reason(absent, []) == "LSUN is not available offline"


def test_status_lists_every_figure_and_table_1():
    keys = [s.figure.key for s in fg.status(BASELINE)]
    assert keys == [f"Fig{n}" for n in range(1, 22)] + ["Table1"]
    by_key = {s.figure.key: s for s in fg.status(BASELINE)}
    fig14 = by_key["Fig14"]  # shown by the other-faces chapter, tested by no row
    assert fig14.verdict == fg.NOT_SCORED and fig14.figure.chapter == "other_faces"
    assert fg.verdict([], shown=False) == fg.ABSENT
    assert by_key["Fig6"].verdict == fg.NOT_SCORED
    p = get_profile("book")
    assert by_key["Fig1"].scale.startswith(f"{p.face_size}×{p.face_size}, {p.blocks}-block")
    assert f"N ≤ {p.faces.largest_n:,}" in by_key["Fig1"].scale


def test_the_status_table_lists_each_scale_once_and_numbers_it():
    statuses = fg.status(BASELINE)
    page = fg.status_html(statuses)
    pairs = {(s.scale, s.figure.paper_scale) for s in statuses if s.scale}
    assert page.count("<li>") == len(pairs) >= 2
    assert all(
        page.count(f"<li>{html.escape(ours)} (the paper: {html.escape(paper)})</li>") == 1
        for ours, paper in pairs)
    assert page.count("<tr>") == len(statuses) + 1  # the header and one row per figure


# ---------------------------------------------------------------------------- targets
@pytest.mark.parametrize(
    "row_id, paper, target",
    [
        ("Fig3.lambda_245", 0.51, "within 0.051 of 0.51"),  # a tenth of the paper's value
        ("Fig5.lambda_0", 1.177, "within 0.1177 of 1.177"),
        ("Fig4.slope_alpha3", 0.75, None),  # set before training: the chapter's, no rule's
        ("Fig4.below_linear_alpha1", 0.0, None),
        ("Fig5.lambda_9", 0.278, None),
        ("Fig3.lambda_ratio", 0.41, None),  # reported: no target across resolutions
        ("Fig5.disk_psnr_slope", None, "<= 0.9"),  # below the optimum by more than a tenth
        ("Fig5.disk_gain_shortfall_dB", None, ">= 0.4139"),
        ("Fig3.edge_share_top20", None, ">= 0.22"),  # above chance by more than a tenth
        ("Fig19.first_eigvec", None, None),
        ("Fig20.tangent_overlap", None, "within 0.1 of 1"),  # the optimum, within a tenth
        ("check.sampler_steps", "about 100", "within 50 of 100"),  # the paper's own precision
        ("Fig1.gap_N10", None, None),  # a threshold of the chapter's
        ("Fig20.tangent_overlap_2blocks", None, "within 0.1 of 1"),  # a control: the same rule
    ])
def test_rule_target(row_id, paper, target):
    assert fg.rule_target(row_id, paper) == target


def test_the_tolerance_follows_the_fraction():
    tol, ref = map(
        float,
        re.match(r"within (\S+) of (\S+)", fg.rule_target("Fig3.lambda_5", 1.244)).groups())
    assert tol == pytest.approx(fg.FRACTION * ref, rel=1e-3)
    assert fg.DB_TOLERANCE == pytest.approx(10 * __import__("math").log10(1 + fg.FRACTION))
    assert f"{fg.FRACTION:.0%}" in fg.rules_text()


@pytest.mark.parametrize("paper, half", [("about 100", 50), (0.46, 0.005), ("7", 0.5),
                                         ("1.244", 0.0005)])
def test_half_last_digit(paper, half):
    assert fg._half_last_digit(paper) == pytest.approx(half)


# ---------------------------------------------------------------------------- the baseline
def test_every_baseline_row_is_named_and_targeted_by_the_mapping():
    figures = {f.key for f in fg.FIGURES}
    for r in BASELINE:
        assert r["id"] not in fg.RENAMED, f"{r['id']}: an old id in the baseline"
        assert r["chapter"] in fg.BY_SLUG, f"{r['id']}: chapter {r['chapter']} is no slug"
        assert fg.figure_of(r["id"]) in figures or fg.kind(
            r["id"]) in (fg.CHECK, fg.IDENTITY,
                         fg.BEYOND), f"{r['id']}: no figure, check or follow-up"
        ruled = fg.rule_target(r["id"], r["paper"])
        if ruled is not None:
            assert r["target"] == ruled, r["id"]
        if (isinstance(r["paper"], (int, float)) or r["paper"] is not None and ruled) and \
                r["id"] not in fg.REPORTED:
            assert r["target"] is not None, f"{r['id']}: a paper value but no target"
        if r["target"] is None:
            assert fg.why_reported(r["id"]) != "no target given", r["id"]
        verdict = None if sc.is_missing(r) else sc.passes(r["target"], r["measured"])
        assert r["pass"] is verdict, r["id"]  # a row waiting for models has none


def test_renamed_ids_are_one_to_one_and_land_on_baseline_rows():
    assert len(set(fg.RENAMED.values())) == len(fg.RENAMED)
    assert not set(fg.RENAMED) & set(fg.RENAMED.values())
    ids = {r["id"] for r in BASELINE}
    assert set(fg.RENAMED.values()) <= ids, "a rename points at no row of the baseline"


def test_every_chapter_of_the_book_has_a_slug():
    chapters = [nb for nb in run.toc_notebooks() if nb != run.SCORECARD_NOTEBOOK]
    undeclared = [nb for nb in chapters if fg.chapter_slug(nb) not in fg.BY_SLUG]
    assert not undeclared, f"declare these chapters in figures.CHAPTERS: {undeclared}"
    assert [fg.chapter_slug(nb) for nb in chapters] == [c.slug for c in fg.CHAPTERS]
    assert fg.chapter_slug("notebooks/07_new_chapter.ipynb") == "07"  # not declared
    assert sorted(["manifolds", "zz", "denoisers"],
                  key=fg.chapter_order) == ["denoisers", "manifolds", "zz"]


# ---------------------------------------------------------------------------- the runner
def test_the_runner_files_a_chapters_rows_under_its_slug(tmp_path):
    notebook = "notebooks/06_low_dim_manifolds.ipynb"
    (tmp_path / "06.json").write_text(json.dumps([row("Fig19.first_eigvec", chapter="06")]))
    rows = run.file_chapter_rows(tmp_path, notebook)
    assert [p.name for p in tmp_path.iterdir()] == ["manifolds.json"]
    assert rows[0]["chapter"] == "manifolds" == sc.collect(tmp_path)[0]["chapter"]
    run.clear_chapter_rows(tmp_path, notebook)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "01.json").write_text(json.dumps([row("G.one", chapter="01")]))
    assert run.file_chapter_rows(tmp_path, "notebooks/01_good.ipynb")[0]["chapter"] == "01"
    assert [p.name for p in tmp_path.iterdir()] == ["01.json"]  # undeclared: its prefix


def test_the_runner_opens_a_chapter_with_its_status(tmp_path):
    path = tmp_path / "06_low_dim_manifolds.ipynb"
    note = new_markdown_cell("a note", metadata={"tags": [run.NOTE_TAG]})
    nbformat.write(
        new_notebook(cells=[new_markdown_cell("# Manifolds"), note,
                            new_markdown_cell("text")]), path)
    rows = [r for r in BASELINE if r["chapter"] == "manifolds"]
    for _ in range(2):  # a second banner replaces the first
        run.add_status_banner(path, rows, "book")
    cells = nbformat.read(path, as_version=4).cells
    assert [run.STATUS_TAG in c.metadata.get("tags", [])
            for c in cells] == [False, False, True, False]
    banner = cells[2].source
    for s in fg.status(rows, "book"):
        if s.figure.chapter == "manifolds":
            assert f"**{s.figure.label}**" in banner and f"**{s.verdict}**" in banner
    assert fg.our_scale("manifolds", "book") in banner


def test_the_status_page_lists_every_figure(tmp_path):
    text = run.write_status_page(BASELINE, "book", tmp_path).read_text()
    table = [
        line for line in text.splitlines()
        if line.startswith("| Fig") or line.startswith("| Table")
    ]
    assert len(table) == len(fg.FIGURES)
    assert "{doc}`generalization </notebooks/02_memorization_generalization>`" in text


def test_targets_set_before_training_are_the_chapters_and_never_loosened():
    rows = {r["id"]: r for r in BASELINE}
    assert rows["Fig4.slope_alpha3"]["target"] == "within 0.07 of 0.7500"
    assert rows["Fig4.below_linear_alpha1"]["target"] == "<= 0.5"
    assert rows["Fig5.tangent_overlap"]["target"] == ">= 0.8"
    assert rows["Fig5.lambda_9"]["target"] == "<= 0.5"
    assert rows["Fig19.first_eigvec"]["target"] == ">= 0.9"
    assert rows["Fig3.lambda_ratio"]["target"] is None
    assert "across resolutions" in fg.why_reported("Fig3.lambda_ratio")
    assert all(s in fg.rules_text() for s in fg.SET_IN_ADVANCE.values())
