"""The browser check: its pure helpers, and (where Chromium is installed) one real run on a
hand-written three-page site. The full check of the built book runs in .ci/run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from diffgen_utils.book import browser_check as bc


@pytest.mark.parametrize("page, url, expected", [
    ("notebooks/01_a.html", "../_static/x.js?v=1", "_static/x.js"),
    ("notebooks/01_a.html", "02_b.html#section", "notebooks/02_b.html"),
    ("notebooks/01_a.html", "../_images/fig%20one.png", "_images/fig one.png"),
    ("notebooks/01_a.html", "sub/", "notebooks/sub/index.html"),
    ("notebooks/01_a.html", "../../outside.html", "../outside.html"),
    ("index.html", "/book/intro.html", "book/intro.html"),
    ("index.html", "./book/intro.html", "book/intro.html"),
    ("index.html", "#top", None),
    ("index.html", "", None),
    ("index.html", "https://arxiv.org/abs/2310.02557", None),
    ("index.html", "//cdn.example.org/x.js", None),
    ("index.html", "mailto:someone@example.org", None),
    ("index.html", "data:image/png;base64,iVBORw0KGgo=", None),
    ("index.html", "javascript:void(0)", None),
])
def test_local_target(page, url, expected):
    assert bc.local_target(page, url) == expected


def test_target_exists(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.html").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("x")
    (tmp_path / "empty").mkdir()
    assert bc.target_exists(tmp_path, "book/intro.html")
    assert bc.target_exists(tmp_path, "sub")
    assert not bc.target_exists(tmp_path, "empty")
    assert not bc.target_exists(tmp_path, "book/missing.html")
    assert not bc.target_exists(tmp_path, "../book/intro.html")


def test_broken_links_and_redirects(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "ok.js").write_text("")
    (tmp_path / "page.html").write_text("x")
    text = ('<link href="_static/ok.js"><script src="_static/missing.js"></script>'
            '<a href="page.html#x">a</a><a href="gone.html">b</a><a href="gone.html">b</a>'
            '<img src="https://example.org/x.png" srcset="_static/ok.js 1x, img@2x.png 2x">'
            '<a href="#local">c</a>')
    assert bc.broken_links(tmp_path, "index.html", text) == \
        ["_static/missing.js", "gone.html", "img@2x.png"]
    redirect = '<meta http-equiv="Refresh" content="0; url=book/intro.html" />'
    assert bc.page_links(redirect) == ([], "book/intro.html")
    assert bc.broken_links(tmp_path, "index.html", redirect) == ["book/intro.html"]


def test_html_pages_skips_indexes_and_assets(tmp_path):
    for name in ("index.html", "genindex.html", "search.html", "book/intro.html",
                 "notebooks/01_a.html", "_static/x.html", "_sources/notebooks/01_a.html"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert bc.html_pages(tmp_path) == ["book/intro.html", "index.html", "notebooks/01_a.html"]
    assert bc.screenshot_path("shots", "notebooks/01_a.html") == Path("shots/notebooks/01_a.png")


def _output(*mimes, kind="display_data"):
    return {"output_type": kind, "data": {m: "x" for m in mimes}, "metadata": {}}


def test_notebook_expectation():
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# t"},
        {"cell_type": "code", "metadata": {}, "outputs": [
            _output("image/png", "text/plain"),
            _output("image/svg+xml", kind="execute_result"),
            _output("text/html", "image/png"),  # shown as HTML (a table), not as an image
            _output("application/vnd.jupyter.widget-view+json", "text/plain"),
            {"output_type": "stream", "name": "stdout", "text": "hello"}]},
        {"cell_type": "code", "metadata": {"tags": ["remove-output"]},
         "outputs": [_output("image/png")]},
        {"cell_type": "code", "metadata": {}, "outputs": [
            {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]},
    ]}
    expect = bc.notebook_expectation(nb)
    assert (expect.figures, expect.widgets, expect.errors, expect.text_only) == (2, 1, 1, False)
    nb["cells"][0]["metadata"]["tags"] = ["text-only"]
    assert bc.notebook_expectation(nb).text_only


def test_page_notebook(tmp_path):
    path = tmp_path / "_sources" / "notebooks" / "01_a.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    assert bc.page_notebook(tmp_path, "notebooks/01_a.html") == path
    assert bc.page_notebook(tmp_path, "book/intro.html") is None


@pytest.mark.skipif(bc.chromium_missing() is not None,
                    reason=f"no browser here: {bc.chromium_missing()}")
@pytest.mark.slow
def test_real_browser_on_a_small_site(tmp_path):
    """A good page with a figure, a redirect, a bad page (missing image and script, a console
    error, a traceback in an output) and a notebook page that lost its figure."""
    from PIL import Image

    site = tmp_path / "html"
    (site / "_images").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 30, 30)).save(site / "_images" / "fig.png")
    (site / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=good.html">')
    (site / "good.html").write_text(
        '<html><body><h1>Good</h1><div class="cell_output"><img src="_images/fig.png"></div>'
        '<a href="bad.html">bad</a></body></html>')
    (site / "bad.html").write_text(
        '<html><body><h1>Bad</h1><img src="_images/missing.png">'
        '<script>console.error("boom")</script>'
        '<div class="cell_output"><pre>Traceback (most recent call last):\n  ...</pre></div>'
        '</body></html>')
    (site / "nb.html").write_text('<html><body><h1>Notebook</h1></body></html>')
    (site / "_sources").mkdir()
    (site / "_sources" / "nb.ipynb").write_text(json.dumps({"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [_output("image/png", "text/plain")]}]}))
    shots = tmp_path / "shots"
    results = {r.page: r for r in bc.check_book(site, shots)}
    assert sorted(results) == ["bad.html", "good.html", "index.html", "nb.html"]
    assert results["good.html"].ok and results["index.html"].ok
    problems = "\n".join(results["bad.html"].problems)
    assert "broken link: _images/missing.png" in problems
    assert "broken image: _images/missing.png" in problems
    assert "boom" in problems and "traceback in an output" in problems
    assert results["nb.html"].problems == \
        ["0 image(s) in the outputs, the notebook has 1 image output(s)"]
    with Image.open(shots / "good.png") as shot:
        assert shot.size[0] >= bc.WINDOW[0]
    assert not (shots / "index.png").exists()  # a redirect has no page of its own
    shutil.rmtree(shots)


@pytest.mark.skipif(bc.chromium_missing() is not None,
                    reason=f"no browser here: {bc.chromium_missing()}")
@pytest.mark.slow
def test_widgets_and_math_render_offline_in_a_built_book(tmp_path):
    """The book's own _config.yml and book/ (vendored MathJax and widget manager, Sphinx
    fixes) around one notebook with math, a figure and an IntSlider, executed and built by the
    runner (~20 s), then checked page by page: nothing may need the network or log an error."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from diffgen_utils.book import run
    from diffgen_utils.config import REPO_ROOT

    shutil.copy(REPO_ROOT / "_config.yml", tmp_path)
    shutil.copytree(REPO_ROOT / "book", tmp_path / "book")
    # the book's intro links the chapters and the scorecard, which this book does not have
    (tmp_path / "book" / "intro.md").write_text("# A small book\n\nOne chapter.\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    chapters:\n"
        "      - file: notebooks/01_widget\n  - caption: About\n    chapters:\n"
        "      - file: book/deviations\n      - file: book/references\n")
    (tmp_path / "notebooks").mkdir()
    nb = new_notebook(cells=[
        new_markdown_cell("# Widgets\n\nInline $y = x + z$ and\n\n$$ f(y) = \\nabla f(y)\\, y $$"),
        new_code_cell('profile = "book"\ndevice = "cpu"', metadata={"tags": ["parameters"]}),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]); plt.show()"),
        new_code_cell("import ipywidgets\n"
                      "ipywidgets.IntSlider(value=3, max=10, description=r'$\\sigma$ level')"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})
    nbformat.write(nb, tmp_path / "notebooks" / "01_widget.ipynb")
    assert run.main(["--profile", "smoke"], root=tmp_path) == 0
    html = tmp_path / "_build" / "html"
    page = (html / "notebooks" / "01_widget.html").read_text()
    assert "cdn.jsdelivr.net" not in page and "cdnjs" not in page  # served by the book itself
    results = {r.page: r for r in bc.check_book(html)}
    assert all(r.ok for r in results.values()), {p: r.problems for p, r in results.items()}
    assert "1/1 widgets" in results["notebooks/01_widget.html"].notes
    assert (tmp_path / "_build" / "screenshots" / "notebooks" / "01_widget.png").exists()
