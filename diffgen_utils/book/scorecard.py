"""Scorecard rows: each chapter records the paper's numbers beside its measured ones.

    scorecard.record("Fig1.gap_N10", chapter="02", measure="train - test PSNR at N=10 (dB)",
                     paper=None, target=">= 5", measured=11.0, profile="book")

A row passes when `measured` satisfies `target` (">= x", "<= x", "within x of y", or None for
rows that are only reported). Ids, the chapters' slugs and the targets of rows compared with a
paper number or a known optimum come from the declared mapping `figures`: `record` files a row
under its current id (`figures.RENAMED`) with the target of its rule (`figures.RULES`; a chapter
may not set another). Rows go to $DIFFGEN_SCORECARD_DIR/<chapter>.json (set by the runner);
outside the runner they are only returned, so interactive runs leave no files. `chapter` is what
the notebook passes (its two-digit prefix); the runner then files the rows under the chapter's
slug (`run.file_chapter_rows`) and clears both files before the notebook runs again.

A chapter prints its rows on its page (`text_table`). After the notebooks ran, the runner
collects every <chapter>.json of the profile into _build/scorecard.json (`collect`), the last
notebook renders it as a table (`table_html`), and at the book profile the rows are compared
with the accepted baseline scorecard/book.json (`compare`). The run fails when a baseline row is
gone, a target differs from the baseline's, a measured value is NaN or None, a chapter has fewer
rows than in the baseline, or a row that passed there fails now; changing any of that takes a
visible change to the baseline file (`--update-baseline`). Files are written atomically
(`write_json`).

A row may also carry its uncertainty (`OPTIONAL_FIELDS`), shown beside the measured value
(`uncertainty_text`, e.g. "0.8476 [0.80, 0.88] Δ0.012") and ignored by the gate:
- `interval`: [lo, hi], the analysis.INTERVAL_QUANTILES of the row's statistic over bootstrap
  resamples of the images or seeds it averages (`analysis.bootstrap_interval`);
- `spread`: |S1 - S2|, the row's measure on the S1 model against the same measure on the S2
  model, where a chapter has both (a row measured on the pair itself has none).
Rows without them (older files, by-construction checks) load and show as before.

A row whose models the profile does not ship yet is recorded as *missing* (`record(...,
missing=why)`): no measured value, no verdict, and `missing` says which models it waits for. It
counts apart (`counts`), shows as "missing" on the pages, and keeps its figure from counting as
reproduced (`figures.verdict`); a row that passed in the baseline and is missing now is a
regression.
"""
from __future__ import annotations

import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis import INTERVAL_QUANTILES
from ..plotting import format_table
from . import figures

FIELDS = ("id", "chapter", "measure", "paper", "target", "measured", "profile", "pass",
          "checkpoints")
OPTIONAL_FIELDS = ("interval", "spread", "missing")  # not compared by the gate
SYMBOLS = {True: "✓", False: "✗", None: "—"}

TARGET = re.compile(r"^\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$|^\s*within\s+([0-9.eE]+)\s+of\s+"
                    r"([-+0-9.eE]+)\s*$")


def passes(target: str | None, measured: float) -> bool | None:
    """True or False for a target string; None when there is no target."""
    if target is None:
        return None
    if measured is None or not math.isfinite(measured):
        return False
    measured = float(measured)  # numpy scalars would make the comparison a numpy bool
    m = TARGET.match(target)
    if not m:
        raise ValueError(f"target {target!r} is not '>= x', '> x', '<= x', '< x' or "
                         "'within x of y'")
    if m.group(1):
        bound = float(m.group(2))
        return {
            ">=": measured >= bound, "<=": measured <= bound, ">": measured > bound, "<": measured
            < bound
        }[m.group(1)]
    return abs(measured - float(m.group(4))) <= float(m.group(3))


def record(id: str, chapter: str, measure: str, measured: float, profile: str,
           target: str | None = None, paper=None, checkpoints: list[str] | None = None,
           interval=None, spread: float | None = None, missing: str | None = None) -> dict:
    """Write (or replace) one row and return it. Outside the runner, or where the runner ran the
    chapter on a stand-in, DIFFGEN_SCORECARD_DIR is unset and the row is only returned. An old
    id is recorded under its new one; a row with a rule in `figures.RULES` gets the rule's
    target (a different `target` is an error). `interval` (lo, hi) and `spread` are stored only
    when given (see the module's docstring). `missing`: why the row has no value yet (the models
    it waits for); `measured` must then be None."""
    id = figures.RENAMED.get(id, id)
    if missing is not None and measured is not None:
        raise ValueError(f"{id}: a missing row has no measured value (got {measured!r})")
    ruled = figures.rule_target(id, paper)
    if ruled is not None:
        if target not in (None, ruled):
            raise ValueError(f"{id}: target {target!r}, but figures.RULES gives {ruled!r}; "
                             "change the rule, not the row")
        target = ruled
    row = {
        "id": id, "chapter": chapter, "measure": measure, "paper": paper, "target": target,
        "measured": None if measured is None else float(measured), "profile": profile, "pass":
        None if missing else passes(target, measured), "checkpoints": checkpoints or []
    }
    row.update(uncertainty(id, interval, spread))
    if missing is not None:
        row["missing"] = str(missing)
    folder = os.environ.get("DIFFGEN_SCORECARD_DIR")
    if folder:
        path = Path(folder) / f"{chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = json.loads(path.read_text()) if path.exists() else []
        rows = [r for r in rows if r["id"] != id] + [row]
        write_json(path, rows)
    return row


def uncertainty(id: str, interval=None, spread: float | None = None) -> dict:
    """The optional fields of a row as stored: interval [lo, hi] (lo <= hi) and spread, each
    only when given."""
    out = {}
    if interval is not None:
        lo, hi = (float(v) for v in interval)
        if lo > hi:
            raise ValueError(f"{id}: interval [{lo}, {hi}] has its ends swapped")
        out["interval"] = [lo, hi]
    if spread is not None:
        out["spread"] = float(spread)
    return out


def record_all(measurements: list[dict], chapter: str, profile: str) -> list[dict]:
    """`record` every row a chapter module measured (dicts with id, measure, measured and
    optionally target, paper, checkpoints, interval, spread, missing)."""
    return [record(chapter=chapter, profile=profile, **m) for m in measurements]


def write_json(path, value, indent: int = 1) -> Path:
    """Write `value` as JSON to `path` atomically: a temporary file beside it, then os.replace,
    so that a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # *.tmp: git-ignored, not *.json
    try:
        text = json.dumps(value, indent=indent, ensure_ascii=False) + "\n"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------------------- collecting


def folder(profile: str) -> Path:
    """Where rows of `profile` are: $DIFFGEN_SCORECARD_DIR (set by the runner), else the
    runner's folder _build/scorecard/<profile> of this checkout (for interactive use)."""
    from diffgen_utils.config import REPO_ROOT

    env = os.environ.get("DIFFGEN_SCORECARD_DIR")
    return Path(env) if env else REPO_ROOT / "_build" / "scorecard" / profile


def read_rows(path) -> list[dict]:
    """The rows of one <chapter>.json, checked to have every field."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: not a list of rows")
    for row in rows:
        missing = [k for k in FIELDS if k not in row]
        if missing:
            raise ValueError(f"{path}: row {row.get('id', '?')!r} lacks {', '.join(missing)}")
    return rows


def collect(folder) -> list[dict]:
    """Every row of every <chapter>.json in `folder`, chapters in book order
    (`figures.chapter_order`), rows in the order recorded (none: []). A row recorded under an
    old id is taken as `record` would write it now (`migrated`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    rows = []
    for path in sorted(folder.glob("*.json")):
        rows += [
            migrated(r) if r["id"] in figures.RENAMED else r
            for r in ({k: row[k]
                       for k in FIELDS + OPTIONAL_FIELDS if k in row} for row in read_rows(path))
        ]
    order = {c: figures.chapter_order(c) for c in {r["chapter"] for r in rows}}
    return sorted(rows, key=lambda r: order[r["chapter"]])  # stable: keeps the rows' order


def migrated(row: dict) -> dict:
    """An older row as `record` would write it now: its current id and chapter, the target of
    its rule, and its verdict recomputed from the same measured value."""
    row = figures.renamed(row)
    target = figures.rule_target(row["id"], row["paper"]) or row["target"]
    return {**row, "target": target, "pass": passes(target, row["measured"])}


def is_missing(row) -> bool:
    """The row waits for models the profile does not ship yet."""
    return bool(row.get("missing"))


def counts(rows) -> dict:
    """How many rows pass, fail, are only reported, and wait for models ("missing" only where
    some do)."""
    c = {
        "pass": sum(r["pass"] is True for r in rows), "fail":
        sum(r["pass"] is False for r in rows), "reported":
        sum(r["pass"] is None and not is_missing(r) for r in rows)
    }
    missing = sum(is_missing(r) for r in rows)
    return {**c, "missing": missing} if missing else c


def summary(rows) -> str:
    c = counts(rows)
    text = f"{c['pass']} pass / {c['fail']} fail / {c['reported']} reported"
    return text + (f" / {c['missing']} missing" if "missing" in c else "")


def by_kind(rows) -> dict[str, list[dict]]:
    """The rows by `figures.kind`, in the order of figures.KIND_NAMES (kinds with rows only):
    the headline counts the claims; controls, identities and checks are counted apart."""
    groups = {k: [r for r in rows if figures.kind(r["id"]) == k] for k in figures.KIND_NAMES}
    return {k: v for k, v in groups.items() if v}


class RowsTable(str):
    """A chapter's rows: as a string a text table (so it prints, splits and compares as text); in
    a notebook's output an HTML table that fits the page's column (`_repr_html_`)."""

    rows: list

    def __new__(cls, rows, empty: str):
        text = format_table(["id", "paper", "target", "measured", ""], [[
            r["id"], None if r["paper"] is None else format_value(r["paper"]), r["target"] or "-",
            measured_text(r),
            verdict_text(r)
        ] for r in rows], ["<", ">", "<", ">", "<"], empty=empty)
        if uncertainty_legend(rows):
            text += "\n" + uncertainty_legend(rows)
        self = super().__new__(cls, text)
        self.rows = list(rows)
        return self

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p><em>{html.escape(str(self))}</em></p>"
        head = "".join(_cell(h, "th") for h in ("id", "paper", "target", "measured", ""))
        body = "".join("<tr>" + _cell(r["id"], breaks=True, title=r.get("measure")) +
                       _cell(format_value(r["paper"]), style="text-align:right") +
                       _target_cell(r) + _measured_cell(r) + _pass_cell(r) + "</tr>"
                       for r in self.rows)
        return (f'<div style="overflow-x:auto">{_TABLE}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>")


VERDICTS = {True: "✓", False: "✗", None: "report"}  # a miss is ✗, never blank
MISSING = "missing"


def verdict_text(row) -> str:
    return MISSING if is_missing(row) else VERDICTS[row["pass"]]


def measured_text(row) -> str | None:
    """The measured value with its uncertainty; for a missing row, what it waits for."""
    if is_missing(row):
        return f"{MISSING}: {row['missing']}"
    return None if row["measured"] is None else format(row["measured"],
                                                       ".4g") + uncertainty_text(row)


UNCERTAINTY_NOTES = {
    "interval": f"[lo, hi]: {INTERVAL_QUANTILES[0]:.0%}-{INTERVAL_QUANTILES[1]:.0%} bootstrap "
    "interval over the images or seeds the value averages", "spread":
    "Δ: |S1 − S2|, the measure on each model of the pair"
}


def uncertainty_legend(rows) -> str:
    """What the uncertainty shown beside the rows' values means ('' where none has any)."""
    return "; ".join(note for key, note in UNCERTAINTY_NOTES.items() if any(
        r.get(key) is not None for r in rows))


def interval_text(lo: float, hi: float) -> str:
    """'[lo, hi]' to the decimal place of half the interval's width (0.7981, 0.8823:
    '[0.80, 0.88]'); to 3 significant digits where the width is 0 or the values are tiny."""
    width = hi - lo
    if not (math.isfinite(width) and width > 0) or max(abs(lo), abs(hi)) < 1e-3:
        return f"[{lo:.3g}, {hi:.3g}]"
    places = max(0, -math.floor(math.log10(width / 2)))
    return f"[{_fixed(lo, places)}, {_fixed(hi, places)}]"


def _fixed(value: float, places: int) -> str:
    """`value` to `places` decimals, without the sign of a value that rounds to zero."""
    text = f"{value:.{places}f}"
    return text.lstrip("-") if float(text) == 0 else text


def uncertainty_text(row) -> str:
    """What follows the measured value: ' [lo, hi]' and ' Δspread' where the row has them."""
    text = "" if row.get("interval") is None else " " + interval_text(*row["interval"])
    return text + ("" if row.get("spread") is None else f" Δ{row['spread']:.2g}")


def text_table(rows, empty: str = "(no rows)") -> RowsTable:
    """A chapter's rows for its page: id, paper, target, measured, ✓ / ✗ / report. Printed it
    is text; shown as a cell's value (or with `display`) it is an HTML table."""
    return RowsTable(rows, empty)


# ---------------------------------------------------------------------------- regressions


@dataclass
class Comparison:
    """Rows of a run against the accepted baseline, by "<chapter>/<id>".

    Every entry of `regressions` fails the book run; each names a row ("02/F1.gap: gone") or a
    chapter ("chapter 02: 10 rows, 12 in the baseline") and says what is wrong. The other lists
    are information only."""

    regressions: list[str] = field(default_factory=list)  # the gate fails on each of these
    fixed: list[str] = field(default_factory=list)  # failed there; passes now
    known_misses: list[str] = field(default_factory=list)  # fails in both
    new: list[str] = field(default_factory=list)  # not in the baseline
    drifted: list[str] = field(default_factory=list)  # reported-only rows whose value changed
    not_run: list[str] = field(default_factory=list)  # baseline rows of chapters not run

    @property
    def ok(self) -> bool:
        return not self.regressions

    def report(self) -> str:
        """One line per list that has entries: the regressions first (always, even none)."""
        lines = [f"regressions: {len(self.regressions)}"]
        lines += [f"  {item}" for item in self.regressions]
        for name in ("fixed", "known_misses", "new", "drifted", "not_run"):
            items = getattr(self, name)
            if items:
                lines.append(f"{name.replace('_', ' ')}: {len(items)} ({', '.join(items)})")
        return "\n".join(lines)


def _key(row) -> str:
    return f"{row['chapter']}/{row['id']}"


def _shown(value) -> str:
    return "None" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def is_unmeasured(value) -> bool:
    """NaN or None: the chapter did not measure the row."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def compare(baseline, current, chapters=None) -> Comparison:
    """Compare the rows of a run with the baseline's.

    Rows of both are taken under their current ids (`figures.renamed`), so a row renamed since
    the baseline is compared with its old self; a baseline id that is neither current nor
    renamed is gone. Regressions (each fails the run): a baseline row that is gone (whatever
    its verdict there); a target that differs from the baseline's; a measured value that is NaN
    or None (any row of the run, new ones too) in a row not declared missing; a chapter with fewer rows than in the baseline;
    a row that passed there and does not pass now. A row's interval and spread are not
    compared: they may move, appear or go without failing anything. Rows of a chapter that has
    no row now and is not in `chapters` (the chapters this run executed; None: every chapter
    counts) were not run, and are listed as such instead."""
    current = [figures.renamed(r) for r in current]
    baseline = [figures.renamed(r) for r in baseline]  # an older baseline's ids: not "gone"
    now = {_key(r): r for r in current}
    old = {_key(r): r for r in baseline}
    ran = {r["chapter"] for r in current} | set(chapters or ())
    out = Comparison()

    def was_run(chapter) -> bool:
        return chapters is None or chapter in ran

    for key, was in old.items():
        if key not in now:
            if was_run(was["chapter"]):
                out.regressions.append(f"{key}: gone (in the baseline, not recorded now)")
            else:
                out.not_run.append(key)
            continue
        is_, problems = now[key], []
        if is_["target"] != was["target"]:
            problems.append(f"target changed ({was['target']!r} in the baseline, "
                            f"{is_['target']!r} now)")
        if is_unmeasured(is_["measured"]) and not is_missing(is_):
            problems.append(f"measured {_shown(is_['measured'])}")
        if was["pass"] is True and is_["pass"] is not True:
            verdict = "reported only" if is_["pass"] is None else "fails"
            problems.append(f"passed, {verdict} now (measured {_shown(is_['measured'])}, "
                            f"target {is_['target']})")
        if problems:
            out.regressions.append(f"{key}: {'; '.join(problems)}")
        elif was["pass"] is False and is_["pass"] is True:
            out.fixed.append(key)
        elif was["pass"] is False and is_["pass"] is False:
            out.known_misses.append(key)
        elif is_["pass"] is None and is_["measured"] != was["measured"] and not is_missing(is_):
            out.drifted.append(f"{key} {_shown(was['measured'])} -> {_shown(is_['measured'])}")
    for key, row in now.items():
        if key in old:
            continue
        out.new.append(key)
        if is_unmeasured(row["measured"]) and not is_missing(row):
            out.regressions.append(f"{key}: measured {_shown(row['measured'])} (a new row)")
    for chapter in sorted({r["chapter"] for r in baseline}):
        had = sum(r["chapter"] == chapter for r in baseline)
        has = sum(r["chapter"] == chapter for r in current)
        if has < had and was_run(chapter):
            out.regressions.append(f"chapter {chapter}: {has} row{'s' * (has != 1)}, "
                                   f"{had} in the baseline")
    return out


# ---------------------------------------------------------------------------- the book page


def chapter_titles(folder) -> dict[str, tuple[str, str]]:
    """{chapter slug: (title, page)} of the notebooks `NN_name.ipynb` in `folder`: the first
    '# ' line of the first markdown cell, and the page name 'NN_name.html'."""
    titles = {}
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        try:
            cells = json.loads(path.read_text()).get("cells", [])
        except (OSError, json.JSONDecodeError):
            continue
        title = next(
            (line[2:].strip() for c in cells if c.get("cell_type") == "markdown"
             for line in "".join(c.get("source", "")).splitlines() if line.startswith("# ")),
            path.stem)
        titles[figures.chapter_slug(path.stem)] = (title, path.with_suffix(".html").name)
    return titles


def format_value(value) -> str:
    """A whole number as is, another to 4 significant digits, text as is, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return str(float(value))
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


_TABLE = '<table class="table diffgen-table" style="font-size:0.85em;margin:0">'


def _cell(text, tag="td", style="", breaks=False, title=None) -> str:
    """A table cell; `breaks`: the text may wrap after '.', '_' and '-' (long row ids);
    `title`: shown when the pointer rests on the cell."""
    attr = f' style="{style}"' if style else ""
    attr += f' title="{html.escape(title)}"' if title else ""
    body = html.escape(text)
    if breaks:
        body = re.sub(r"([._-])", r"\1<wbr>", body)
    return f"<{tag}{attr}>{body}</{tag}>"


def _target_cell(row) -> str:
    """The target; for a row without one, why it is only reported."""
    if row["target"] is not None:
        return _cell(row["target"], style="white-space:nowrap")
    why = figures.why_reported(row["id"])
    return f'<td style="color:#6e7781"><small><em>none: {html.escape(why)}</em></small></td>'


def _measured_cell(row) -> str:
    """The measured value, and beside it its interval and S1/S2 spread (smaller, kept on one
    line, explained when the pointer rests on it)."""
    if is_missing(row):
        return (
            f'<td style="text-align:right;color:#6e7781" title="{html.escape(row["missing"])}">'
            f"{MISSING}: {html.escape(row['missing'])}</td>")
    value = html.escape(format_value(row["measured"]))
    extra = uncertainty_text(row)
    if extra:
        legend = html.escape(uncertainty_legend([row]))
        value += (f' <small style="color:#6e7781;white-space:nowrap" title="{legend}">'
                  f"{html.escape(extra.strip())}</small>")
    return f'<td style="text-align:right">{value}</td>'


def _pass_cell(row) -> str:
    passed = row["pass"]
    colour = {True: "#1a7f37", False: "#cf222e", None: "#6e7781"}[passed]
    label = ("waits for models not shipped yet" if is_missing(row) else
             {True: "passes", False: "fails", None: "reported only"}[passed])
    symbol = "…" if is_missing(row) else SYMBOLS[passed]
    return (f'<td style="text-align:center;color:{colour};font-weight:bold" title="{label}">'
            f"{symbol}</td>")


def headline_html(rows) -> str:
    """The counts of the claims, and apart from them those of every other kind of row."""
    groups = by_kind(rows)
    if not groups:
        return ""
    first, *rest = groups.items()
    text = (f"<p><strong>{html.escape(figures.KIND_NAMES[first[0]].capitalize())}:</strong> "
            f"{len(first[1])} rows, {html.escape(summary(first[1]))}.")
    if rest:
        text += " Counted apart: " + "; ".join(
            f"{html.escape(figures.KIND_NAMES[k])}, {len(v)} rows, {html.escape(summary(v))}"
            for k, v in rest) + "."
    return text + "</p>"


def table_html(rows, titles: dict | None = None) -> str:
    """The scorecard as HTML: the headline counts, then per chapter its title, the profile and
    checkpoints behind the numbers, and a table id / measure / paper / target / measured / pass
    (✓ ✗ —; a row without a target says why)."""
    titles = titles or {}
    if not rows:
        return ("<p><em>No chapter has recorded scorecard rows at this profile yet.</em></p>")
    parts = [headline_html(rows)]
    for chapter in dict.fromkeys(r["chapter"] for r in rows):  # the order of the rows
        mine = [r for r in rows if r["chapter"] == chapter]
        title, page = titles.get(chapter, (f"Chapter {chapter}", None))
        name = html.escape(f"{page[:2]} {title}" if page else title)
        heading = f'<a href="{html.escape(page)}">{name}</a>' if page else name
        profiles = sorted({r["profile"] for r in mine})
        checkpoints = list(dict.fromkeys(c for r in mine for c in r["checkpoints"]))
        kinds = "; ".join(f"{figures.KIND_NAMES[k]}: {summary(v)}"
                          for k, v in by_kind(mine).items())
        parts.append(f'<p style="margin-top:1.5em"><strong>{heading}</strong><br>'
                     f"profile <code>{html.escape(', '.join(profiles))}</code>; "
                     f"{html.escape(kinds)}<br>checkpoints: " +
                     (", ".join(f"<code>{html.escape(c)}</code>"
                                for c in checkpoints) or "none") + "</p>")
        header = "".join(
            _cell(h, "th") for h in ("id", "measure", "paper", "target", "measured", "pass"))
        body = []
        for r in mine:
            body.append("<tr>" + _cell(r["id"], breaks=True) + _cell(r["measure"]) +
                        _cell(format_value(r["paper"])) + _target_cell(r) + _measured_cell(r) +
                        _pass_cell(r) + "</tr>")
        parts.append(f'<div style="overflow-x:auto">{_TABLE}'
                     f"<thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody>"
                     "</table></div>")
    return "\n".join(parts)
