"""Pages the runner generates into the staging copy of the book from what a run recorded;
nothing on them is typed by hand.

- `results_summary`: five to eight sentences on what reproduces, what does not and why, from
  the figures' verdicts (`figures.status`) and the scorecard rows; it heads the status page
  that the intro includes.
- `cost_page`: what each run cost. Per chapter, the wall time at this run's profile and at the
  last recorded run of the other profile (smoke or book). Per shipped model, its training
  time, steps and machine (`checkpoints/book/manifest.json`), and the total core-hours. Also
  the commit and date of the build.
- `build_footer`: the commit and date of the build, for the footer of every page.

Run records are the dicts the runner writes to `_build/run.json`. Besides the last run, the
runner keeps the last record of each profile (`_build/runs/<profile>.json`). A chapter that a
partial run did not execute keeps its earlier page, and its earlier time
(`earlier_times`).
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from . import figures
from . import scorecard as sc

COST_PAGE = "book/run_cost.md"  # in the staging copy; _toc.yml lists it under "About"
COMPARED_PROFILES = ("book", "smoke")  # the cost page's columns, after this run's profile
SHIPPED_MANIFEST = "checkpoints/book/manifest.json"


# ---------------------------------------------------------------------------- words
def _and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


def _md(text) -> str:
    """Text safe inside a markdown paragraph or table cell."""
    return str(text).replace("|", "\\|").replace("*", "\\*")


def _labels(figs: list[figures.Figure]) -> str:
    """'Figure 6', 'Figures 6, 7 and 8', 'Figures 6 and 7, and Table 1'."""
    groups: dict[str, list[str]] = {}
    for fig in figs:
        word, number = fig.label.split(" ", 1)
        groups.setdefault(word, []).append(number)
    parts = [f"{word}{'s' if len(nums) > 1 else ''} {_and(nums)}" for word, nums in groups.items()]
    return ", and ".join(parts)


def _are(n: int) -> str:
    return f"{n} is" if n == 1 else f"{n} are"


def _tally(rows: list[dict]) -> str:
    """'3 pass, 1 misses its target and 2 are only reported' (', 1 waits for models not shipped
    yet' where some do)."""
    c = sc.counts(rows)
    misses = "misses its target" if c["fail"] == 1 else "miss their target"
    text = f"{c['pass']} pass, {c['fail']} {misses} and {_are(c['reported'])} only reported"
    waiting = c.get("missing", 0)
    if waiting:
        text += f"; {waiting} wait{'s' * (waiting == 1)} for models not shipped yet"
    return text


def _named(status: figures.Status) -> str:
    return f"{status.figure.label} ({_md(status.figure.content)})"


# ---------------------------------------------------------------------------- results summary
def _claim_rows(rows: list[dict], key: str) -> list[dict]:
    """The rows that decide a figure's verdict, as `figures.verdict` counts them."""
    mine = [r for r in rows if figures.figure_of(r["id"]) == key]
    return [r for r in mine if figures.kind(r["id"]) == figures.CLAIM] or mine


def _gated_share(rows: list[dict]) -> str:
    gated = [r["pass"] for r in rows if r["pass"] is not None]
    if not gated:
        return "its rows are only reported, without a target"
    return f"{sum(gated)} of {len(gated)} gated rows pass"


def _rows_sentence(rows: list[dict], profile: str) -> str:
    where = f"at the `{profile}` profile"
    if profile == "smoke":
        where += ", whose numbers only show that the code runs,"
    if not rows:
        return f"The scorecard of this build holds no rows {where} so no figure has a verdict."
    return f"The scorecard of this build holds {len(rows)} rows {where}: {_tally(rows)}."


def _coverage_sentence(statuses: list[figures.Status]) -> str:
    scored = sum(s.verdict not in (figures.NOT_SCORED, figures.ABSENT, figures.AWAITING)
                 for s in statuses)
    shown = sum(s.verdict == figures.NOT_SCORED for s in statuses)
    absent = sum(s.verdict == figures.ABSENT for s in statuses)
    return (f"Of the paper's {len(statuses)} figures and tables, {_are(scored)} tested by "
            f"these rows, {_are(shown)} shown without a test and {_are(absent)} not in the book.")


def _reproduced_sentence(statuses: list[figures.Status]) -> str:
    done = [_named(s) for s in statuses if s.verdict == figures.REPRODUCED]
    if not done:
        return "No figure is reproduced in full."
    return f"**Reproduced**, every gated claim row passing: {_and(done)}."


def _partly_sentence(statuses: list[figures.Status], rows: list[dict]) -> str:
    partly = [
        f"{s.figure.label} ({_gated_share(_claim_rows(rows, s.figure.key))})" for s in statuses
        if s.verdict == figures.PARTLY
    ]
    if not partly:
        return "No figure is partly reproduced."
    return f"**Partly reproduced**, some of their gated rows missing: {_and(partly)}."


def _failed_sentence(statuses: list[figures.Status]) -> str:
    # the reason's own "; " become commas: semicolons separate the figures here
    failed = [
        f"{_named(s)}, where {_md(s.reason).replace('; ', ', ')}" for s in statuses
        if s.verdict == figures.NOT_REPRODUCED
    ]
    if not failed:
        return "No tested figure fails outright."
    return f"**Not reproduced**: {'; '.join(failed)}."


def _unscored_sentence(statuses: list[figures.Status]) -> str:
    shown = [s.figure for s in statuses if s.verdict == figures.NOT_SCORED]
    if not shown:
        return "Every figure the book shows is tested by a row."
    return f"Shown in the chapters but tested by no row: {_labels(shown)}."


def _awaiting_sentence(statuses: list[figures.Status]) -> str:
    waiting = [s for s in statuses if s.verdict == figures.AWAITING]
    if not waiting:
        return ""
    return (f"Waiting for models this profile does not ship yet: "
            f"{'; '.join(f'{_named(s)}, {_md(s.reason)}' for s in waiting)}.")


def _absent_sentence(statuses: list[figures.Status]) -> str:
    by_reason: dict[str, list[figures.Figure]] = {}
    for s in statuses:
        if s.verdict == figures.ABSENT:
            by_reason.setdefault(s.reason, []).append(s.figure)
    if not by_reason:
        return "Every figure of the paper is in the book."
    return "Not in the book: " + "; ".join(f"{_labels(figs)}, as {_md(why)}"
                                           for why, figs in by_reason.items()) + "."


def _other_rows_sentence(rows: list[dict]) -> str:
    """The rows that test no figure: identities and checks, follow-up measures."""
    checks = [r for r in rows if figures.kind(r["id"]) in (figures.IDENTITY, figures.CHECK)]
    follow = [r for r in rows if figures.kind(r["id"]) == figures.BEYOND]
    parts = [f"of {len(checks)} checks that test no figure, {_tally(checks)}"] if checks else []
    parts += [f"of {len(follow)} follow-up measures, {_tally(follow)}"] if follow else []
    if not parts:
        return "No row tests anything besides the paper's figures."
    return f"Besides the figures: {'; '.join(parts)}."


def results_summary(rows: list[dict], statuses: list[figures.Status], profile: str) -> str:
    """Eight or nine sentences in two paragraphs, what reproduces and what does not and why, then
    what is not tested, at `profile`. Every count, verdict and reason comes from `rows` and
    `statuses` (figures.status)."""
    verdicts = [
        _rows_sentence(rows, profile),
        _coverage_sentence(statuses),
        _reproduced_sentence(statuses),
        _partly_sentence(statuses, rows),
        _failed_sentence(statuses)
    ]
    untested = [
        _unscored_sentence(statuses),
        _awaiting_sentence(statuses),
        _absent_sentence(statuses),
        _other_rows_sentence(rows)
    ]
    return " ".join(verdicts) + "\n\n" + " ".join(s for s in untested if s) + "\n"


# ---------------------------------------------------------------------------- run records
def earlier_times(record: dict, previous: dict | None) -> dict:
    """The chapters `record` did not execute that the last run at its profile (`previous`)
    timed, with that run's commit and date: {notebook: {seconds, git_commit, date, ran_at}}.
    Their pages keep the earlier output, and so their cost does too."""
    previous = previous or {}
    earlier = dict(previous.get("earlier_seconds") or {})
    for nb, seconds in (previous.get("seconds") or {}).items():
        earlier[nb] = {
            "seconds": seconds, "git_commit": previous.get("git_commit"), "date":
            previous.get("date"), "ran_at": (previous.get("substituted") or {}).get(nb)
        }
    return {nb: t for nb, t in earlier.items() if nb not in record.get("seconds", {})}


def _short(commit) -> str:
    return str(commit)[:7] if commit else "unknown"


def _provenance(record: dict) -> str:
    """'commit 573515b (with uncommitted changes), 2025-01-05 12:34 UTC'."""
    dirty = " (with uncommitted changes)" if record.get("git_dirty") else ""
    return (f"commit `{_short(record.get('git_commit'))}`{dirty}, "
            f"{record.get('date') or 'date not recorded'}")


def build_footer(record: dict) -> str:
    """One line of HTML for every page's footer: the commit and date of the build."""
    dirty = " with uncommitted changes" if record.get("git_dirty") else ""
    text = (f"Built from commit {_short(record.get('git_commit'))}{dirty} on "
            f"{record.get('date') or 'an unrecorded date'}, profile {record.get('profile')}.")
    return f'<p class="diffgen-build">{html.escape(text)}</p>'


# ---------------------------------------------------------------------------- chapter times
def duration(seconds) -> str:
    """'25.2 s', '3.0 min', '1.25 h'; '—' when unknown."""
    if not isinstance(seconds, (int, float)):
        return "—"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 6000 else f"{seconds / 3600:.2f} h"


def chapter_time(record: dict | None, notebook: str) -> str:
    """A chapter's cell in the cost table: its time in `record` ('—' if none), marked when it
    ran at another profile (no data: the stand-in) or comes from an earlier run."""
    if not record:
        return "—"
    if notebook in record.get("seconds", {}):
        ran_at = (record.get("substituted") or {}).get(notebook)
        note = f" (ran at {ran_at})" if ran_at and ran_at != record.get("profile") else ""
        return duration(record["seconds"][notebook]) + note
    earlier = (record.get("earlier_seconds") or {}).get(notebook)
    if not earlier:
        return "—"
    ran_at = earlier.get("ran_at")
    note = f", ran at {ran_at}" if ran_at and ran_at != record.get("profile") else ""
    return f"{duration(earlier['seconds'])} (at {_short(earlier.get('git_commit'))}{note})"


def _chapter_label(notebook: str) -> str:
    stem = Path(notebook).stem
    return f"{{doc}}`{stem.replace('_', ' ')} </{Path(notebook).with_suffix('')}>`"


def _total(record: dict | None, notebooks: list[str]) -> str:
    if not record:
        return "—"
    earlier = record.get("earlier_seconds") or {}
    times = [
        record["seconds"][nb] if nb in record.get("seconds", {}) else earlier[nb]["seconds"]
        for nb in notebooks if nb in record.get("seconds", {}) or nb in earlier
    ]
    return f"**{duration(sum(times))}**" if times else "—"


def _column_note(profile: str, record: dict | None, this_run: bool) -> str:
    if not record:
        return (f"- `{profile}`: no run at this profile is recorded in this build folder, so "
                f"its column is empty (`python -m diffgen_utils.run --profile {profile}` "
                "fills it).")
    which = "this run" if this_run else "the last run at this profile"
    status = "" if record.get("status") == "ok" or this_run else (
        f" That run did not finish ({record.get('status')}): only its finished chapters show.")
    machine = f"on {record['machine']}" if record.get("machine") else "(machine not recorded)"
    partial = (" A time marked \"at\" a commit is an earlier run's: this run did not execute "
               "that chapter, and its page keeps the earlier output."
               if record.get("earlier_seconds") else "")
    return (f"- `{profile}`: {which}, {_provenance(record)}, device "
            f"{record.get('device', 'unknown')} {machine}.{status}{partial}")


def chapter_table(notebooks: list[str], records: dict[str, dict | None], profile: str) -> str:
    """Wall time per chapter, one column per profile (this run's first), with where each
    column comes from, or that no run of that profile is recorded."""
    columns = [profile] + [p for p in COMPARED_PROFILES if p != profile]
    lines = [
        "| chapter | " + " | ".join(f"`{p}`" for p in columns) + " |",
        "| --- | " + " | ".join("---:" for _ in columns) + " |"
    ]
    lines += [
        f"| {_chapter_label(nb)} | " +
        " | ".join(chapter_time(records.get(p), nb) for p in columns) + " |" for nb in notebooks
    ]
    lines.append("| all chapters | " +
                 " | ".join(_total(records.get(p), notebooks) for p in columns) + " |")
    notes = [_column_note(p, records.get(p), p == profile) for p in columns]
    return "\n".join(lines + [""] + notes) + "\n"


# ---------------------------------------------------------------------------- training cost
_THREADS = re.compile(r"torch threads (\d+)")
_PROCESSES = re.compile(r"(\d+) processes")


def cores(machine: str | None) -> int | None:
    """The CPU cores a training run kept busy, from its machine string ('x86_64, 2 cpus, torch
    threads 1' -> 1; ', 2 processes (torchrun)' doubles it); None when it does not say."""
    threads = _THREADS.search(machine or "")
    if not threads:
        return None
    processes = _PROCESSES.search(machine or "")
    return int(threads.group(1)) * (int(processes.group(1)) if processes else 1)


def _steps(entry: dict) -> str:
    steps, planned = entry.get("steps"), (entry.get("config") or {}).get("steps")
    if not isinstance(steps, int):
        return "—"
    return f"{steps:,} of {planned:,}" if isinstance(planned, int) and steps < planned else (
        f"{steps:,}")


def _versions(manifest: dict) -> list[str]:
    """One line per set of library versions, with how many models it trained."""
    sets: dict[str, int] = {}
    for entry in manifest.values():
        versions = entry.get("versions") or {}
        key = ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"
        sets[key] = sets.get(key, 0) + 1
    return [f"- {key}: {n} model{'s' if n > 1 else ''}" for key, n in sets.items()]


def training_summary(manifest: dict) -> str:
    """The totals above the models' table: wall time and core-hours of all shipped models."""
    timed = [e for e in manifest.values() if isinstance(e.get("wall_time_s"), (int, float))]
    wall = sum(e["wall_time_s"] for e in timed)
    counted = [e for e in timed if cores(e.get("machine")) is not None]
    core_hours = sum(e["wall_time_s"] * cores(e["machine"]) for e in counted) / 3600
    text = (f"{len(manifest)} shipped models; their training took {wall / 3600:.1f} hours of "
            f"wall time and **{core_hours:.1f} core-hours** (wall time × torch threads × "
            "processes).")
    untimed, uncounted = len(manifest) - len(timed), len(timed) - len(counted)
    if untimed:
        text += f" {untimed} record no training time and are left out of both sums."
    if uncounted:
        text += (f" {uncounted} do not say how many threads they used and are left out of the "
                 "core-hours.")
    return text


def model_table(manifest: dict) -> str:
    """Per shipped model: steps, training wall time and the machine it trained on."""
    lines = ["| model | steps | training | machine |", "| --- | ---: | ---: | --- |"]
    lines += [
        f"| {_md(name)} | {_steps(e)} | {duration(e.get('wall_time_s'))} | "
        f"{_md(e.get('machine') or '—')} |" for name, e in manifest.items()
    ]
    return "\n".join(lines) + "\n"


def training_section(manifest: dict | None) -> str:
    if not manifest:
        return (f"No `{SHIPPED_MANIFEST}` was found (or it lists no model), so there is no "
                "training cost to report.\n")
    return "\n".join([
        training_summary(manifest), "",
        model_table(manifest), "Library versions they were trained with:", "", *_versions(manifest)
    ]) + "\n"


# ---------------------------------------------------------------------------- the page
def cost_page(record: dict, records: dict[str, dict | None], notebooks: list[str],
              manifest: dict | None) -> str:
    """The cost page: this run (`record`), the last recorded run of each other profile
    (`records`, None where there is none), the chapters of the book (`notebooks`, in book
    order) and the shipped models' manifest (None where it is missing)."""
    profile = record.get("profile")
    records = {**records, profile: record}
    return "\n".join([
        "# What each run cost",
        "",
        f"This book was built from {_provenance(record)}, at the `{profile}` profile. The "
        "runner writes this page at each build from the run's own records: the chapters' wall "
        "times and the training log of every shipped model.",
        "",
        "## Executing the chapters",
        "",
        "Wall time of each notebook, as papermill ran it. At `book` the chapters load the "
        "shipped models below; at `smoke` they train tiny models on the spot, within these "
        "times.",
        "",
        chapter_table(notebooks, records, profile),
        "## Training the shipped models",
        "",
        f"The models in `{Path(SHIPPED_MANIFEST).parent}/`, from their training log "
        f"(`{Path(SHIPPED_MANIFEST).name}`).",
        "",
        training_section(manifest),
    ])
