"""The pages the runner generates (diffgen_utils.book.pages): the results summary of the intro
and the cost page, on small made-up run records, manifests and rows."""
from __future__ import annotations

import re

import pytest

from diffgen_utils.book import figures as fg
from diffgen_utils.book import pages

NB1, NB2, NB99 = ("notebooks/01_a.ipynb", "notebooks/02_b.ipynb", "notebooks/99_scorecard.ipynb")


def row(id, passed=True, target=">= 0", measured=1.0):
    return {
        "id": id, "chapter": "manifolds", "measure": "m", "paper": None, "target": target,
        "measured": measured, "profile": "book", "pass": passed, "checkpoints": []
    }


def run_record(profile="book", seconds=None, **extra):
    return {
        "profile": profile, "device": "cpu", "seconds": seconds or {}, "status": "ok",
        "git_commit": "0123456789abcdef", "date": "2025-01-02 03:04 UTC", "machine":
        "x86_64, 2 cpus", "data_dir": "/secret/data/folder", **extra
    }


def manifest_entry(wall=3600.0, steps=100, planned=100, machine="x86_64, 8 cpus, torch threads 2"):
    return {
        "steps": steps, "wall_time_s": wall, "machine": machine, "config": {"steps": planned},
        "versions": {"torch": "2.0", "python": "3.11"}
    }


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def sentences(text: str) -> list[str]:
    # a sentence ends with ". " or a final "."; decimals and "e.g." do not occur in these
    return [s for s in re.split(r"(?<=\.)\s+(?=[A-Z*])", text.strip()) if s]


# ---------------------------------------------------------------------------- summary
SUMMARY_ROWS = [
    row("Fig1.a"),
    row("Fig1.b"),  # reproduced
    row("Fig5.x", passed=False, target=">= 0.8", measured=0.27),
    row("Fig5.y"),
    row("Fig19.first_eigvec", passed=False, target=">= 0.9", measured=0.04),
    row("check.homogeneity"),
    row("beyond.z", passed=None, target=None)
]


def test_summary_states_the_verdicts_and_reasons_from_the_rows():
    statuses = fg.status(SUMMARY_ROWS, "book")
    text = pages.results_summary(SUMMARY_ROWS, statuses, "book")
    assert len(sentences(text)) == 8, sentences(text)  # the issue asks for five to eight
    assert "7 rows at the `book` profile: 4 pass, 2 miss their target and 1 is only" in text
    assert "Of the paper's 22 figures and tables, 3 are tested by these rows" in text
    assert "**Reproduced**, every gated claim row passing: Figure 1 (train and test PSNR" in text
    assert "**Partly reproduced**, some of their gated rows missing: Figure 5 (1 of 2" in text
    fig19 = next(s for s in statuses if s.figure.key == "Fig19")
    assert (f"**Not reproduced**: Figure 19 (one face and its rescalings), where {fig19.reason}"
            in text)
    assert "first_eigvec 0.04 (target >= 0.9)" in text
    assert "Every figure of the paper is in the book." in text
    assert "of 1 checks that test no figure, 1 pass" in text
    assert "of 1 follow-up measures, 0 pass, 0 miss their target and 1 is only reported" in text


def test_summary_changes_with_the_rows():
    """Nothing is typed: another run's rows give other counts and verdicts."""
    rows = [row("Fig1.a", passed=False, target=">= 2", measured=1.0)]
    text = pages.results_summary(rows, fg.status(rows, "book"), "book")
    assert "1 rows at the `book` profile: 0 pass, 1 misses its target" in text
    assert "No figure is reproduced in full." in text
    assert "No figure is partly reproduced." in text
    assert "**Not reproduced**: Figure 1 (train and test PSNR against N), where its one" in text
    assert "No row tests anything besides the paper's figures." in text
    assert 5 <= len(sentences(text)) <= 8


def test_summary_without_rows_and_at_smoke():
    text = pages.results_summary([], fg.status([], "smoke"), "smoke")
    assert "holds no rows at the `smoke` profile, whose numbers only show that the code" in text
    assert "0 are tested by these rows" in text and "No tested figure fails outright." in text
    assert 5 <= len(sentences(text)) <= 8


def test_figure_labels_group_by_kind():
    by_key = {f.key: f for f in fg.FIGURES}
    assert pages._labels([by_key["Fig6"]]) == "Figure 6"
    assert pages._labels([by_key[k] for k in ("Fig6", "Fig7", "Fig8", "Table1")
                          ]) == ("Figures 6, 7 and 8, and Table 1")


# ---------------------------------------------------------------------------- run records
def test_earlier_times_carry_what_this_run_did_not_execute():
    previous = run_record(seconds={NB1: 10.0, NB2:
                                   20.0}, substituted={NB2: "smoke"}, git_commit="abcdef0123",
                          earlier_seconds={NB99: {"seconds": 3.0, "git_commit": "fedcba9"}})
    record = run_record(seconds={NB1: 11.0})
    earlier = pages.earlier_times(record, previous)
    assert set(earlier) == {NB2, NB99}
    assert earlier[NB2] == {
        "seconds": 20.0, "git_commit": "abcdef0123", "date": "2025-01-02 03:04 UTC", "ran_at":
        "smoke"
    }
    assert earlier[NB99]["git_commit"] == "fedcba9"  # carried on from an older run
    assert pages.earlier_times(record, None) == {}


def test_chapter_time_says_where_a_time_comes_from():
    record = run_record(seconds={NB1: 25.24, NB2: 250.0}, substituted={NB2: "smoke"},
                        earlier_seconds={NB99: {"seconds": 7200.0, "git_commit": "abcdef0123"}})
    assert pages.chapter_time(record, NB1) == "25.2 s"
    assert pages.chapter_time(record, NB2) == "4.2 min (ran at smoke)"
    assert pages.chapter_time(record, NB99) == "2.00 h (at abcdef0)"
    assert pages.chapter_time(record, "notebooks/03_c.ipynb") == "—"
    assert pages.chapter_time(None, NB1) == "—"


# ---------------------------------------------------------------------------- cost page
def test_cost_page_with_both_profiles():
    record = run_record(seconds={NB1: 30.0, NB2: 90.0}, git_dirty=True)
    smoke = run_record("smoke", seconds={NB1: 2.0}, git_commit="9999999aaa", status="failed",
                       date="2024-12-31 23:00 UTC")
    manifest = {"faces-N10": manifest_entry(), "disks": manifest_entry(1800.0, 50, 200)}
    page = pages.cost_page(record, {"smoke": smoke, "book": None}, [NB1, NB2], manifest)
    assert page.startswith("# What each run cost\n")
    assert "built from commit `0123456` (with uncommitted changes), 2025-01-02 03:04 UTC" in page
    rows = table_lines(page)
    assert rows[0] == "| chapter | `book` | `smoke` |"
    assert "| {doc}`01 a </notebooks/01_a>` | 30.0 s | 2.0 s |" in rows
    assert "| {doc}`02 b </notebooks/02_b>` | 90.0 s | — |" in rows
    assert "| all chapters | **2.0 min** | **2.0 s** |" in rows
    assert ("- `smoke`: the last run at this profile, commit `9999999`, 2024-12-31 23:00 UTC"
            in page)
    assert "That run did not finish (failed)" in page
    # training: 1 h on 2 threads + 0.5 h on 2 threads
    assert ("2 shipped models; their training took 1.5 hours of wall time and **3.0 "
            "core-hours**") in page
    assert "| faces-N10 | 100 | 60.0 min | x86_64, 8 cpus, torch threads 2 |" in rows
    assert "| disks | 50 of 200 | 30.0 min |" in page  # still in training
    assert "- torch 2.0, python 3.11: 2 models" in page
    assert "/secret/data" not in page  # no machine path on a page
    assert all(line.count("|") == rows[0].count("|") for line in rows[:5])


def test_cost_page_says_what_is_missing():
    record = run_record("smoke", seconds={NB1: 1.0}, git_commit=None, date=None, machine=None)
    page = pages.cost_page(record, {"book": None}, [NB1], None)
    assert table_lines(page)[0] == "| chapter | `smoke` | `book` |"
    assert "| {doc}`01 a </notebooks/01_a>` | 1.0 s | — |" in page
    assert "commit `unknown`, date not recorded" in page and "(machine not recorded)" in page
    assert ("- `book`: no run at this profile is recorded in this build folder, so its column "
            "is empty") in page
    assert "No `checkpoints/book/manifest.json` was found" in page


def test_a_paper_run_shows_both_other_profiles():
    page = pages.cost_page(run_record("paper", seconds={NB1: 5.0}), {}, [NB1], {})
    assert table_lines(page)[0] == "| chapter | `paper` | `book` | `smoke` |"


def test_training_totals_leave_out_what_is_not_recorded():
    manifest = {
        "a":
        manifest_entry(7200.0, machine="x86_64, 2 cpus, torch threads 1, "
                       "2 processes (torchrun)"), "b":
        manifest_entry(3600.0, machine="somewhere"), "c":
        {**manifest_entry(), "wall_time_s": None}
    }
    text = pages.training_summary(manifest)
    assert ("3 shipped models; their training took 3.0 hours of wall time and **4.0 "
            "core-hours**") in text
    assert "1 record no training time" in text
    assert "1 do not say how many threads they used" in text


@pytest.mark.parametrize("machine, expected",
                         [("x86_64, 2 cpus, torch threads 1", 1),
                          ("x86_64, 16 cpus, torch threads 8, NVIDIA H200", 8),
                          ("x86_64, 2 cpus, torch threads 2, 4 processes (torchrun)", 8),
                          ("unknown", None), (None, None)])
def test_cores(machine, expected):
    assert pages.cores(machine) == expected


def test_duration():
    assert [pages.duration(s) for s in (3.44, 99.9, 100, 5999, 6000, None)
            ] == ["3.4 s", "99.9 s", "1.7 min", "100.0 min", "1.67 h", "—"]


def test_build_footer_is_escaped_html():
    footer = pages.build_footer(run_record(profile="<b>", git_dirty=True))
    assert footer == ('<p class="diffgen-build">Built from commit 0123456 with uncommitted '
                      "changes on 2025-01-02 03:04 UTC, profile &lt;b&gt;.</p>")


def test_a_figure_not_in_the_book_is_named_with_its_reason():
    fig = fg.Figure("Fig9", "Figure 1 on LSUN", None, missing="LSUN is not available offline")
    absent = fg.Status(fig, fg.ABSENT, fg.reason(fig, []), "")
    assert pages._absent_sentence([absent]) == ("Not in the book: Figure 9, as LSUN is not "
                                                "available offline.")
