"""Execute the book's notebooks with papermill, then build the book with Jupyter Book 1.x.

    python -m diffgen_utils.run [--profile smoke|book|paper] [--notebooks 01,03] [--device cpu|cuda]
                                [--no-build]
    python -m diffgen_utils.run --profile book --update-baseline

Source notebooks stay output-free: they are executed into a staging copy of the book,
`_build/source/`, which is then built into `_build/html`. A failing notebook or a build warning
fails the run: `_build/html` is removed and `_build/FAILED` says why.

Before a chapter runs, the runner decides how (`plan_chapter`), from what the notebook declares
in its metadata ("diffgen": {"needs": {"data": [...], "families": [...]}}): at the profile when
its data and models are there; on the synthetic stand-in, with a note on the page and no
scorecard rows, when its data is absent (at the smoke profile where the profile ships its
models); and at `book` a missing or stale model fails the run with the command that trains it.
Chapter cells never branch on what is available.

Scorecard: each chapter writes its rows to `_build/scorecard/<profile>/<chapter>.json` (a re-run
replaces its chapter's file; rows of chapters not run stay); after the notebooks the runner
collects them into `_build/scorecard.json`, and the last notebook (99_scorecard, executed after
any other) renders them. At the `book` profile the rows of the chapters that recorded them are
compared with the accepted baseline `scorecard/book.json` (`scorecard.compare`: a gone row, a
changed target, a NaN, fewer rows, or a pass turned fail fails the run; the book is kept and
`_build/FAILED` names the rows). `--update-baseline` accepts the last run's rows.

Chapters that sample the same model from the same seeds share the samples within one run
(`sample_cache_dir`, cleared when the run starts; `sampling.sample`).

Generated pages (in the staging copy, from this run's records; `pages`): the status page the
intro includes, headed by a results summary; the cost page, `book/run_cost.md` (chapter wall
times at this profile and at the last recorded run of the other, `_build/runs/<profile>.json`;
the shipped models' training cost); and the commit and date of the build in every page's footer
(`html.extra_footer` of the staged _config.yml).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import yaml

from diffgen_utils import data, families, zoo
from diffgen_utils.book import figures, pages
from diffgen_utils.book import scorecard as sc
from diffgen_utils.config import PROFILE_NAMES, REPO_ROOT, get_profile

# The scorecard page: executed after every other notebook, whenever any other one is.
SCORECARD_NOTEBOOK = "notebooks/99_scorecard.ipynb"
BASELINE_PROFILES = ("book", )  # smoke numbers mean nothing; paper has no accepted run


class RunFailed(RuntimeError):
    """A notebook or the book build failed; the message says where."""


class ModelsMissing(RunFailed):
    """A profile that ships its models (book) lacks some that a chapter needs."""


class Regressions(RunFailed):
    """Scorecard rows that passed in the baseline fail now; the book itself was built."""


def toc_notebooks(root=REPO_ROOT) -> list[str]:
    """Paths like 'notebooks/01_x.ipynb' of the notebooks listed in _toc.yml, in book order."""
    found = []

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            file = node.get("file")
            if isinstance(file, str) and file.startswith("notebooks/"):
                found.append(str(Path(file).with_suffix(".ipynb")))
            for value in node.values():
                walk(value)

    walk(yaml.safe_load((Path(root) / "_toc.yml").read_text()))
    return found


def select_notebooks(available: list[str], prefixes: str | None) -> list[str]:
    """The notebooks whose file names start with one of the comma-separated two-digit prefixes."""
    if not prefixes:
        return list(available)
    by_prefix = {Path(nb).name[:2]: nb for nb in available}
    wanted = [p.strip() for p in prefixes.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in by_prefix]
    if unknown:
        listing = ", ".join(f"{k} ({Path(v).stem})" for k, v in by_prefix.items()) or "none"
        raise ValueError(f"unknown notebook prefix {', '.join(unknown)}; available: {listing}")
    return [by_prefix[p] for p in wanted]


def with_scorecard_page(selected: list[str], available: list[str]) -> list[str]:
    """`selected`, with the scorecard notebook (if the book has one) last whenever any other
    notebook runs, so that its table always shows the rows of this run."""
    others = [nb for nb in selected if nb != SCORECARD_NOTEBOOK]
    if (SCORECARD_NOTEBOOK in available and others) or SCORECARD_NOTEBOOK in selected:
        return others + [SCORECARD_NOTEBOOK]
    return others


def staging_dir(root=REPO_ROOT) -> Path:
    return Path(root) / "_build" / "source"


def sample_cache_dir(root=REPO_ROOT) -> Path:
    """Samples shared by the chapters of one run (`sampling.sample_cache_file`); cleared when a
    run starts, so no run reads another's."""
    return Path(root) / "_build" / "sample-cache"


def scorecard_dir(profile: str, root=REPO_ROOT) -> Path:
    return Path(root) / "_build" / "scorecard" / profile


def scorecard_file(root=REPO_ROOT) -> Path:
    return Path(root) / "_build" / "scorecard.json"


def baseline_file(profile: str, root=REPO_ROOT) -> Path:
    return Path(root) / "scorecard" / f"{profile}.json"


def _earlier_run(path: Path) -> dict | None:
    """Papermill parameters of a successfully executed staging copy, else None."""
    if not path.exists():
        return None
    meta = nbformat.read(path, as_version=4).metadata.get("papermill")
    return None if not meta or meta.get("exception") else dict(meta.get("parameters") or {})


def stage_book(selected: list[str], profile: str, root=REPO_ROOT) -> Path:
    """Refresh the staging copy from the source tree and return its folder.

    Unselected notebooks keep an earlier executed copy if staging has one, else are copied
    unexecuted; selected ones are copied too and then overwritten by execute_notebook."""
    root, stage = Path(root), staging_dir(root)
    stage.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml", "book"):
        src, dst = root / name, stage / name
        if dst.is_dir():
            shutil.rmtree(dst)
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.exists():
            shutil.copy2(src, dst)
    skip = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__")
    new = stage / "notebooks.new"
    shutil.rmtree(new, ignore_errors=True)
    shutil.copytree(root / "notebooks", new, ignore=skip)
    for src in sorted((root / "notebooks").rglob("*.ipynb")):
        rel = src.relative_to(root)
        if ".ipynb_checkpoints" in rel.parts:
            continue
        old, dst = stage / rel, new / rel.relative_to("notebooks")
        dst.parent.mkdir(parents=True, exist_ok=True)
        params = None if str(rel) in selected else _earlier_run(old)
        shutil.copy2(old if params is not None else src, dst)
        if params is not None:
            note = "" if params.get("profile") == profile else "  <-- WARNING: another profile"
            print(f"keeping the earlier output of {rel} (parameters {params}){note}")
    shutil.rmtree(stage / "notebooks", ignore_errors=True)
    new.rename(stage / "notebooks")
    return stage


# ---------------------------------------------------------------- what a chapter can run with
NOTE_TAG = "runner-note"  # the cell with_notes adds
SUBSTITUTE_PROFILE = "smoke"  # where a page runs when the data its shipped models need is absent
SMOKE_NOTE = ("Profile `smoke`: tiny images and networks trained for a few dozen steps on the "
              "spot. Every number and picture on this page only shows that the code runs.")


@dataclass
class ChapterPlan:
    """How the runner executes one notebook, decided before its first cell runs."""

    profile: str  # the profile it runs at
    notes: list[str] = field(default_factory=list)  # shown at the top of the page
    scorecard: bool = True  # whether its rows enter the scorecard


def chapter_needs(notebook) -> dict:
    """What a chapter declares in its metadata: {"data": [data sets], "families": [model
    families]} (notebook metadata "diffgen": {"needs": ...})."""
    return nbformat.read(notebook, as_version=4).metadata.get("diffgen", {}).get("needs", {})


def plan_chapter(needs: dict, profile: str) -> ChapterPlan:
    """Decide how a chapter runs: at `profile` when its data and models are there; on the
    synthetic stand-in (at the smoke profile where `profile` ships its models) when its data is
    absent, with a note and no scorecard rows; a ModelsMissing error, naming the training
    command, when a profile that ships its models lacks one."""
    absent = [name for name in needs.get("data", ()) if not data.has_faces(name)]
    plan = ChapterPlan(profile)
    if absent:
        where = "" if get_profile(profile).train_missing else (
            f" Its shipped `{profile}` models were trained on those faces, so the page ran at "
            f"the `{SUBSTITUTE_PROFILE}` profile instead.")
        plan = ChapterPlan(profile if not where else SUBSTITUTE_PROFILE, scorecard=False)
        plan.notes.append(
            f"No {' or '.join(absent)} data was found (`DIFFGEN_DATA`), so the images on this page "
            f"are synthetic ellipses, not faces.{where} None of its numbers enter the scorecard; "
            f"point `DIFFGEN_DATA` at the data (see the README) for the real page.")
    if plan.profile == "smoke":
        plan.notes.append(SMOKE_NOTE)
    p = get_profile(plan.profile)
    if not p.train_missing:
        names = [
            name for family in needs.get("families", ())
            for name in families.FAMILIES[family].names(p)
        ]
        lacking = zoo.missing(names, p)
        if lacking:
            listed = "\n".join(f"  {name}: {state}" for name, state in lacking.items())
            raise ModelsMissing(f"the {p.name} profile lacks models this chapter needs:\n"
                                f"{listed}\n  train them with: {zoo.train_command(lacking, p)}")
    return plan


def with_notes(nb, notes: list[str]):
    """The notebook with a note cell after its title cell (the page's first cell)."""
    if notes:
        text = "\n\n".join(f":::{{note}}\n{note}\n:::" for note in notes)
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(text, metadata={"tags": [NOTE_TAG]}))
    return nb


@contextlib.contextmanager
def _environ(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _this_package_first() -> str:
    """PYTHONPATH with this checkout's root first: kernels and the Sphinx build import the same
    diffgen_utils as this runner, whatever pip's editable install points at (a CI clone
    re-points it)."""
    package_root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)


def _tags(cell) -> list:
    return cell.metadata.setdefault("tags", [])


def execute_notebook(src, dst, profile: str, device: str, root=REPO_ROOT,
                     plan: ChapterPlan | None = None) -> float:
    """Execute `src` into `dst` (cwd = dst's folder) with papermill as `plan` says (default:
    at `profile`, rows into its scorecard); return the wall time."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    src, dst = Path(src), Path(dst)
    plan = plan or ChapterPlan(profile)
    name = os.path.relpath(src, root)
    scorecard = scorecard_dir(profile, root)
    scorecard.mkdir(parents=True, exist_ok=True)
    # the chapter's rows come from this run only (record() merges into an existing file)
    (scorecard / f"{src.name[:2]}.json").unlink(missing_ok=True)
    clear_chapter_rows(scorecard, src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(with_notes(nbformat.read(src, as_version=4), plan.notes), dst)
    t0 = time.perf_counter()
    with _environ(DIFFGEN_BATCH="1",
                  DIFFGEN_SCORECARD_DIR=str(scorecard) if plan.scorecard else "",
                  DIFFGEN_SAMPLE_CACHE=str(sample_cache_dir(root)),
                  PYTHONPATH=_this_package_first()):
        try:
            pm.execute_notebook(str(dst), str(dst),
                                parameters={"profile": plan.profile, "device": device},
                                kernel_name="python3", cwd=str(dst.parent), progress_bar=False)
        except PapermillExecutionError as e:
            cells = [
                c for c in nbformat.read(dst, as_version=4).cells
                if "papermill-error-cell-tag" not in _tags(c)
            ]
            injected = sum(
                bool({"injected-parameters", NOTE_TAG} & set(_tags(c)))
                for c in cells[:e.cell_index])
            first = (e.source.strip().splitlines() or [""])[0]
            raise RunFailed(
                f"notebook {name} failed at cell index {e.cell_index - injected} (0-based, in the "
                f"source notebook), execution count {e.exec_count}: {e.ename}: {e.evalue}\n"
                f"  the cell begins: {first}\n  traceback in: {os.path.relpath(dst, root)}"
            ) from None
        except Exception as e:  # the kernel died, would not start, ...
            raise RunFailed(f"notebook {name} failed: {type(e).__name__}: {e}") from e
    # The page shows the values this run used (collapsed), not the notebook's defaults.
    nb = nbformat.read(dst, as_version=4)
    for cell in nb.cells:
        tags = _tags(cell)
        extra = {"injected-parameters": "hide-input", "parameters": "remove-cell"}
        for tag, added in extra.items():
            if tag in tags and added not in tags:
                tags.append(added)
    nbformat.write(nb, dst)
    return time.perf_counter() - t0


def _jupyter_book() -> list[str]:
    script = Path(sys.executable).with_name("jupyter-book")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


def build_book(root=REPO_ROOT) -> float:
    """Build the staging copy with warnings as errors; on success replace _build/html."""
    build = Path(root) / "_build"
    out = build / "html.new"
    shutil.rmtree(out, ignore_errors=True)
    cmd = _jupyter_book() + [
        "build",
        str(staging_dir(root)), "-W", "-n", "--keep-going", "--path-output",
        str(out)
    ]
    t0, problems = time.perf_counter(), []
    env = {**os.environ, "PYTHONPATH": _this_package_first()}  # for the book_sphinx extension
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            if "WARNING" in line or "ERROR" in line:
                problems.append(re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip()))
    if proc.returncode != 0:
        shutil.rmtree(out, ignore_errors=True)
        head = (f"jupyter-book build failed (exit {proc.returncode}); paths under "
                f"{os.path.relpath(staging_dir(root), root)} mirror the repository")
        raise RunFailed("\n  ".join([head] + problems[:30]))
    shutil.rmtree(build / "html", ignore_errors=True)
    (out / "_build" / "html").rename(build / "html")
    shutil.rmtree(out)
    (build / "FAILED").unlink(missing_ok=True)
    print(f"the book is in {build / 'html'} (open index.html)", flush=True)
    return time.perf_counter() - t0


def record_failure(message: str, root=REPO_ROOT, keep_book: bool = False) -> None:
    """Remove the book (no stale book may look good) and write _build/FAILED. `keep_book`: the
    book is this run's (the run failed on its scorecard), so it stays to be looked at."""
    build = Path(root) / "_build"
    build.mkdir(parents=True, exist_ok=True)
    if not keep_book:
        shutil.rmtree(build / "html", ignore_errors=True)
    (build / "FAILED").write_text(message + "\n")
    print(f"\nFAILED: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- chapters' rows and status
STATUS_TAG = "runner-status"  # the banner cell add_status_banner adds
STATUS_PAGE = "book/reproduction_status.md"  # in the staging copy; book/intro.md includes it


def chapter_of(notebook) -> str:
    """The slug a notebook's rows are filed under (figures.CHAPTERS; else its prefix)."""
    return figures.chapter_slug(Path(notebook).stem)


def clear_chapter_rows(folder: Path, notebook) -> None:
    """Remove the rows a notebook filed under its slug (execute_notebook removes the file its
    cells write, <prefix>.json), so that a re-run replaces them."""
    (Path(folder) / f"{chapter_of(notebook)}.json").unlink(missing_ok=True)


def file_chapter_rows(folder: Path, notebook) -> list[dict]:
    """File the rows a notebook recorded (<prefix>.json, `chapter` its prefix) under its slug:
    <slug>.json, `chapter` the slug. Returns them."""
    folder, slug = Path(folder), chapter_of(notebook)
    src = folder / f"{Path(notebook).name[:2]}.json"
    if not src.exists():
        path = folder / f"{slug}.json"
        return sc.read_rows(path) if path.exists() else []
    rows = [{**row, "chapter": slug} for row in sc.read_rows(src)]
    sc.write_json(folder / f"{slug}.json", rows)
    if src.name != f"{slug}.json":
        src.unlink()
    return rows


def add_status_banner(path: Path, rows: list[dict], profile: str) -> None:
    """Put the chapter's status (`figures.banner`, from its rows) at the top of its executed
    page, after the title and the runner's notes; only for chapters figures.CHAPTERS declares."""
    slug = chapter_of(path)
    if slug not in figures.BY_SLUG:
        return
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if STATUS_TAG not in _tags(c)]
    at = 1
    while at < len(nb.cells) and NOTE_TAG in _tags(nb.cells[at]):
        at += 1
    nb.cells.insert(
        at,
        nbformat.v4.new_markdown_cell(figures.banner(slug, rows, profile),
                                      metadata={"tags": [STATUS_TAG]}))
    nbformat.write(nb, path)


def write_status_page(rows: list[dict], profile: str, stage: Path) -> Path:
    """The figure-by-figure status of `rows` as markdown, for the intro page to include: the
    results summary (`pages.results_summary`), then the status table."""
    path = Path(stage) / STATUS_PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    statuses = figures.status(rows, profile)
    path.write_text(
        pages.results_summary(rows, statuses, profile) + "\n" +
        figures.status_markdown(statuses, profile))
    return path


# ---------------------------------------------------------------- what a run cost
def runs_dir(root=REPO_ROOT) -> Path:
    """The last run record of each profile, <profile>.json (run.json holds only the last)."""
    return Path(root) / "_build" / "runs"


def _read_json(path: Path):
    """The JSON in `path`; None where it is missing or unreadable (a page then says so)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def earlier_records(root=REPO_ROOT) -> dict[str, dict | None]:
    """The last recorded run of each profile, before this one (None where there is none); a
    run.json older than _build/runs/ stands for its profile."""
    last = _read_json(Path(root) / "_build" / "run.json") or {}
    return {
        p: _read_json(runs_dir(root) / f"{p}.json") or (last if last.get("profile") == p else None)
        for p in PROFILE_NAMES
    }


def write_cost_page(record: dict, earlier: dict, stage: Path, root=REPO_ROOT) -> Path:
    """The cost page (`pages.cost_page`) of this run, into the staging copy."""
    path = Path(stage) / pages.COST_PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = _read_json(Path(root) / pages.SHIPPED_MANIFEST)
    path.write_text(pages.cost_page(record, earlier, toc_notebooks(root), manifest))
    return path


def set_build_footer(stage: Path, record: dict) -> None:
    """Put the commit and date of this build in every page's footer: `html.extra_footer` of
    the staging copy's _config.yml (the source _config.yml is left as it is)."""
    path = Path(stage) / "_config.yml"
    config = yaml.safe_load(path.read_text()) or {}
    config["html"] = {**(config.get("html") or {}), "extra_footer": pages.build_footer(record)}
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def save_run_record(record: dict, root=REPO_ROOT) -> None:
    """_build/run.json, and the same record as the last of its profile in runs_dir."""
    sc.write_json(Path(root) / "_build" / "run.json", record, indent=2)
    sc.write_json(runs_dir(root) / f"{record['profile']}.json", record, indent=2)


def collect_scorecard(profile: str, root=REPO_ROOT) -> list[dict]:
    """Gather the profile's rows into _build/scorecard.json and print a summary."""
    try:
        rows = sc.collect(scorecard_dir(profile, root))
    except ValueError as e:
        raise RunFailed(f"scorecard: {e}") from None
    out = sc.write_json(scorecard_file(root), rows)
    chapters = ", ".join(sorted({r["chapter"] for r in rows})) or "none"
    print(
        f"scorecard: {len(rows)} rows ({sc.summary(rows)}; chapters {chapters}) -> "
        f"{os.path.relpath(out, root)}", flush=True)
    return rows


def check_baseline(rows: list[dict], profile: str, notebooks: list[str],
                   root=REPO_ROOT) -> sc.Comparison | None:
    """Compare `rows` with the profile's accepted baseline (None: the profile has none), for
    the chapters of `notebooks` (those that ran at the profile and recorded rows)."""
    path = baseline_file(profile, root)
    if profile not in BASELINE_PROFILES:
        return None
    if not path.exists():
        print(
            f"scorecard: no baseline {os.path.relpath(path, root)} to compare with; accept "
            f"this run's rows with: python -m diffgen_utils.run --profile {profile} "
            "--update-baseline", flush=True)
        return None
    try:
        baseline = sc.read_rows(path)
    except ValueError as e:
        raise RunFailed(f"scorecard baseline: {e}; restore it from git (git checkout -- "
                        f"{os.path.relpath(path, root)})") from None
    chapters = {chapter_of(nb) for nb in notebooks}
    result = sc.compare(baseline, rows, chapters)
    print(f"scorecard against {os.path.relpath(path, root)}: {result.report()}", flush=True)
    return result


def update_baseline(profile: str, root=REPO_ROOT) -> Path:
    """Accept the rows of the last run (_build/scorecard.json) as the profile's baseline."""
    source, path = scorecard_file(root), baseline_file(profile, root)
    if not source.exists():
        raise RunFailed(f"no {os.path.relpath(source, root)}: run python -m diffgen_utils.run "
                        f"--profile {profile} first")
    run = Path(root) / "_build" / "run.json"
    last = json.loads(run.read_text()) if run.exists() else {}
    if last.get("profile") != profile or (last.get("status") != "ok" and not str(
            last.get("error", "")).startswith("scorecard regr")):
        raise RunFailed(
            f"the last run ({os.path.relpath(run, root)}: profile "
            f"{last.get('profile')}, {last.get('status', 'none')}) is not a finished "
            f"{profile} run: run python -m diffgen_utils.run --profile {profile} first")
    if last.get("face_data") is not True:
        had = ("does not record whether it had face data" if "face_data" not in last else
               f"had no face data (no CelebA images in {last.get('data_dir', '$DIFFGEN_DATA')}"
               "/celeba80)")
        raise RunFailed(f"the last run ({os.path.relpath(run, root)}) {had}, so its scorecard "
                        "lacks the rows measured on faces and cannot become the baseline: set "
                        "DIFFGEN_DATA to the data folder (the one holding celeba80/, e.g. "
                        "../shared/data) and rerun python -m diffgen_utils.run --profile "
                        f"{profile}")
    rows = json.loads(source.read_text())
    profiles = sorted({r["profile"] for r in rows})
    if not rows or profiles != [profile]:
        raise RunFailed(f"{os.path.relpath(source, root)} holds rows of profile(s) "
                        f"{', '.join(profiles) or 'none'}, not only {profile}: run python -m "
                        f"diffgen_utils.run --profile {profile} first")
    unmeasured = [
        f"{r['chapter']}/{r['id']}" for r in rows
        if sc.is_unmeasured(r["measured"]) and not sc.is_missing(r)
    ]  # a row declared missing waits for its models, and is accepted as such
    if unmeasured:
        raise RunFailed(f"{os.path.relpath(source, root)}: rows measured NaN or None (the gate "
                        f"fails on them whatever the baseline): {', '.join(unmeasured)}; fix "
                        "their chapters and rerun")
    if path.exists():
        print(f"changes against {os.path.relpath(path, root)}:\n"
              f"{sc.compare(json.loads(path.read_text()), rows).report()}")
    sc.write_json(path, rows)
    print(f"wrote {os.path.relpath(path, root)}: {len(rows)} rows ({sc.summary(rows)})")
    return path


def _git(root, *args) -> str | None:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _git_commit(root) -> str | None:
    return _git(root, "rev-parse", "HEAD")


def _git_dirty(root) -> bool | None:
    """Whether tracked files differ from the commit (None: not a git checkout)."""
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def run_book(profile="book", notebooks=None, device=None, build=True, root=REPO_ROOT) -> dict:
    """Execute `notebooks` (default: all in _toc.yml) and build the book; return the run record."""
    root, t0 = Path(root), time.perf_counter()
    device = device or get_profile(profile).device
    notebooks = toc_notebooks(root) if notebooks is None else list(notebooks)
    from diffgen_utils.config import data_dir

    # face_data: without it the chapters skip their face rows, so update_baseline refuses the run
    record = dict(profile=profile, device=device, notebooks=notebooks, seconds={},
                  git_commit=_git_commit(root), git_dirty=_git_dirty(root),
                  date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  machine=f"{platform.machine()}, {os.cpu_count()} cpus", status="failed",
                  face_data=data.has_faces("celeba"), data_dir=str(data_dir()))
    earlier = earlier_records(root)
    try:
        missing = [nb for nb in notebooks if not (root / nb).exists()]
        if missing:
            raise RunFailed(f"listed in _toc.yml but missing: {', '.join(missing)}")
        stage = stage_book(notebooks, profile, root)
        set_build_footer(stage, record)
        shutil.rmtree(sample_cache_dir(root), ignore_errors=True)
        for i, nb in enumerate(notebooks, 1):
            tag = f"[{i}/{len(notebooks)}] {nb}"
            plan = plan_chapter(chapter_needs(root / nb), profile)
            print(f"{tag}: running ({plan.profile}, {device})", flush=True)
            seconds = execute_notebook(root / nb, stage / nb, profile, device, root, plan)
            if plan.scorecard:
                mine = file_chapter_rows(scorecard_dir(profile, root), root / nb)
                add_status_banner(stage / nb, mine, plan.profile)
            if plan.profile != profile or not plan.scorecard:
                record.setdefault("substituted", {})[nb] = plan.profile
            record["seconds"][nb] = round(seconds, 1)
            print(f"{tag}: {seconds:.1f} s", flush=True)
        rows = collect_scorecard(profile, root)
        write_status_page(rows, profile, stage)
        _note_earlier_times(record, earlier.get(profile))
        write_cost_page(record, earlier, stage, root)
        record["scorecard"] = sc.counts(rows)
        if build:
            record["build_seconds"] = round(build_book(root), 1)
        recorded = [nb for nb in notebooks if nb not in record.get("substituted", {})]
        comparison = check_baseline(rows, profile, recorded, root)
        if comparison is not None:
            record["scorecard"]["regressions"] = comparison.regressions
            if comparison.regressions:
                raise Regressions(
                    f"scorecard regressions against "
                    f"{os.path.relpath(baseline_file(profile, root), root)}:\n    " +
                    "\n    ".join(comparison.regressions) + "\n  to accept them: "
                    f"python -m diffgen_utils.run --profile {profile} --update-baseline")
        record["status"] = "ok"
    except Regressions as e:
        record["error"] = str(e)
        record_failure(str(e), root, keep_book=True)
        raise
    except RunFailed as e:
        record["error"] = str(e)
        record_failure(str(e), root)
        raise
    finally:
        record["total_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"total wall time {record['total_seconds']:.1f} s ({record['status']})", flush=True)
        _note_earlier_times(record, earlier.get(profile))
        save_run_record(record, root)
    return record


def _note_earlier_times(record: dict, previous: dict | None) -> None:
    """record["earlier_seconds"]: the times of the chapters this run kept from earlier runs."""
    record.pop("earlier_seconds", None)
    times = pages.earlier_times(record, previous)
    if times:
        record["earlier_seconds"] = times


def main(argv=None, root=REPO_ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffgen_utils.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="book")
    parser.add_argument("--notebooks", help="comma-separated two-digit prefixes (default: all)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: the profile's")
    parser.add_argument("--no-build", action="store_true", help="execute only; skip jupyter-book")
    parser.add_argument(
        "--update-baseline", action="store_true",
        help="run nothing: accept the last run's scorecard (_build/scorecard.json) "
        "as scorecard/<profile>.json (book profile only)")
    args = parser.parse_args(argv)
    if args.update_baseline:
        if args.profile not in BASELINE_PROFILES:
            parser.error(f"--update-baseline: only the {', '.join(BASELINE_PROFILES)} profile "
                         "has a baseline")
        try:
            update_baseline(args.profile, root)
        except RunFailed as e:
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        available = toc_notebooks(root)
        selected = with_scorecard_page(select_notebooks(available, args.notebooks), available)
    except ValueError as e:
        parser.error(str(e))
    try:
        run_book(args.profile, selected, args.device, not args.no_build, root)
    except RunFailed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
