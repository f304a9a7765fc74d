"""The browser check: its pure helpers, and (where Chromium is installed) one real run on a
hand-written three-page site. The full check of the built book runs in .ci/run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from diffgen_utils import plotting
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
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# t"},
            {
                "cell_type":
                "code",
                "metadata": {},
                "outputs": [
                    _output("image/png", "text/plain"),
                    _output("image/svg+xml", kind="execute_result"),
                    _output("text/html", "image/png"),  # shown as HTML (a table), not as an image
                    _output("application/vnd.jupyter.widget-view+json", "text/plain"),
                    {"output_type": "stream", "name": "stdout", "text": "hello"}
                ]
            },
            {
                "cell_type": "code", "metadata": {"tags": ["remove-output"]}, "outputs":
                [_output("image/png")]
            },
            {
                "cell_type":
                "code", "metadata": {}, "outputs":
                [{"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]
            },
        ]
    }
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


def _figure(src, caption="A figure.", number="Figure 1 ", style="", name="fig-a"):
    """MyST-NB's markup for an image output captioned by `mystnb.figure` metadata."""
    number = f'<span class="caption-number">{number}</span>' if number else ""
    return (f'<figure class="align-default" id="{name}"><img src="{src}" style="{style}">'
            f'<figcaption><p>{number}<span class="caption-text">{caption}</span></p>'
            '</figcaption></figure>')


def _png(path, width, dpi=None, height=30):
    """A plain PNG `width` px wide; `dpi` goes in its pHYs chunk as matplotlib writes it."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (30, 30, 200)).save(path,
                                                          **({"dpi": (dpi, dpi)} if dpi else {}))
    return path


def test_png_dpi_reads_the_phys_chunk(tmp_path):
    assert bc.png_dpi(_png(tmp_path / "a.png", 10, dpi=100).read_bytes()) == \
        pytest.approx(100, abs=0.01)
    assert bc.png_dpi(_png(tmp_path / "b.png", 10, dpi=72).read_bytes()) == \
        pytest.approx(72, abs=0.01)
    assert bc.png_dpi(_png(tmp_path / "c.png", 10).read_bytes()) is None
    assert bc.png_dpi(b"GIF89a") is None and bc.png_dpi(None) is None


def test_image_bytes_from_files_and_data_urls(tmp_path):
    import base64

    data = _png(tmp_path / "_images" / "a.png", 10, dpi=100).read_bytes()
    assert bc.image_bytes(tmp_path, "notebooks/x.html", "../_images/a.png") == data
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert bc.image_bytes(tmp_path, "x.html", url) == data
    assert bc.image_bytes(tmp_path, "x.html", "_images/missing.png") is None


def _image(width=400, natural=400, caption="c", number="Figure 1", widget=False, table=False):
    return {
        "src": "../_images/f.png", "width": width, "natural": natural, "id": "", "widget": widget,
        "table": table, "caption": caption, "number": number
    }


def test_output_image_rules_and_their_thresholds():
    """80% of the natural width passes, less fails; 7 pt at 100 dpi needs a scale of 9/9.72;
    captions and numbers on figures only; widget and table images are exempt as stated."""
    ok = bc.output_image_problems
    assert bc.FIGURE_FONT_PT == plotting.MIN_FONT_PT
    assert ok([_image(width=400)], [100.0]) == []
    assert ok([_image(width=372)], [None]) == []  # 93%: text not measured without a dpi
    assert [p.split(" shown")[0] for p in ok([_image(width=316)], [None])] == ["figure 1 (f.png)"]
    assert "(79%), below 80%" in ok([_image(width=316)], [None])[0]
    assert ok([_image(width=320)], [None]) == []  # exactly 80%
    assert ok([_image(width=372)], [100.0]) == []  # 9.04 px
    text = ok([_image(width=368)], [100.0])  # 92%: 8.9 px
    assert len(text) == 1 and "is 8.9 px on the page (scale 0.92), below 9 px" in text[0]
    assert "6.3 px" in ok([_image(width=260)], [100.0])[1]  # 65%: both rules
    assert "7.0 px" in ok([_image()], [72.0])[0]  # full size at 72 dpi
    assert "has no caption" in ok([_image(caption="")], [None])[0]
    assert "no figure number" in ok([_image(number="")], [None])[0]
    widget = _image(width=200, caption="", number="", widget=True)
    assert [p.split(" shown")[0] for p in ok([widget], [72.0])] == ["widget image 1 (f.png)"]
    assert ok([_image(width=100, caption="", number="", table=True)], [100.0]) == []
    assert ok([_image(natural=0, width=0)], [100.0]) == []  # not loaded: a broken image
    named = dict(_image(caption=""), id="fig-01-psnr")
    assert ok([named], [None]) == [
        "figure #fig-01-psnr has no caption (give its cell "
        "`mystnb.figure` metadata)"
    ]


def test_overflow_problems_name_the_block():
    block = {
        "kind": "code input", "cell": 3, "section": "setup", "scroll": 740, "client": 686, "line":
        "x = 1"
    }
    assert bc.overflow_problems([block]) == [
        "code input of cell 3 in #setup overflows its column: 740 px of content in 686 px "
        "('x = 1')"
    ]
    assert bc.overflow_problems([dict(block, cell=0, section="", kind="code block")])[0] \
        .startswith("code block overflows")


needs_chromium = pytest.mark.skipif(bc.chromium_missing() is not None,
                                    reason=f"no browser here: {bc.chromium_missing()}")


def _cell(code="x = 1", output=""):
    """A MyST-NB cell: its input (pre scrolls, as in the book's theme) and its output."""
    return ('<div class="cell"><div class="cell_input"><div class="highlight">'
            f'<pre style="overflow:auto">{code}</pre></div></div>'
            f'<div class="cell_output">{output}</div></div>')


def _page(*cells, width=688):
    return (f'<html><head><style>figure {{ margin: 0 }}</style></head><body>'
            f'<main style="width:{width}px"><section id="s">{"".join(cells)}'
            '</section></main></body></html>')


@pytest.fixture(scope="module")
def rules_site(tmp_path_factory):
    """Pages that break one new rule each, and one that keeps them all; checked once."""
    site = tmp_path_factory.mktemp("rules") / "html"
    images = site / "_images"
    _png(images / "f100.png", 400, dpi=100), _png(images / "f72.png", 400, dpi=72)
    _png(images / "plain.png", 400)
    long = "y = " + " + ".join(["x"] * 60)  # 240 characters: about 1900 px of monospace
    wide_table = '<div style="overflow-x:auto"><table><tr>' + \
        "<td style='white-space:nowrap'>a long cell that does not wrap</td>" * 12 + \
        "</tr></table></div>"
    pages = {
        "good.html":
        _page(
            _cell("x = 1", _figure("_images/f100.png")),
            _cell(output=f'<div class="output stream"><pre style="white-space:pre-wrap">'
                  f'{long}</pre></div>'),
            _cell(output='<div class="widget-subarea"><img class="widget-image" '
                  'src="_images/f72.png"></div>'),
            _cell(output='<table><tr><td><img src="_images/plain.png" style="width:60px">'
                  '</td></tr></table>'),
            _cell(output='<div style="overflow-x:auto"><table><tr><td>small</td></tr>'
                  '</table></div>'), '<pre>python -m short</pre>'),
        "shrunk.html":
        _page(_cell(output=_figure("_images/f100.png", style="max-width:100%")), width=240),
        "small_text.html":
        _page(_cell(output=_figure("_images/f100.png", style="width:360px")),
              _cell(output=_figure("_images/f72.png", name="fig-b", number="Figure 2 "))),
        "captions.html":
        _page(_cell(output='<img src="_images/f100.png">'),
              _cell(output=_figure("_images/f100.png", number="")),
              _cell(output=_figure("_images/f100.png", caption="", name="fig-c"))),
        "overflow.html":
        _page(_cell(long), _cell(output=wide_table), f"<pre>{long}</pre>", width=600),
    }
    for name, text in pages.items():
        (site / name).write_text(text)
    shots = site.parent / "shots"
    return {r.page: r for r in bc.check_book(site, shots)}, shots


@needs_chromium
@pytest.mark.slow
def test_rules_pass_a_good_page(rules_site):
    results, shots = rules_site
    assert results["good.html"].problems == []
    assert "scale >= 1.00" in results["good.html"].notes  # the table's thumbnail is exempt
    assert "text >= 9.7 px" in results["good.html"].notes
    assert (shots / "good.png").exists()


@needs_chromium
@pytest.mark.slow
def test_rules_fail_a_shrunk_figure(rules_site):
    problems = rules_site[0]["shrunk.html"].problems
    assert len(problems) == 2, problems
    assert "figure #fig-a shown at 240 of 400 px (60%), below 80%" in problems[0]
    assert "is 5.8 px on the page (scale 0.60)" in problems[1]


@needs_chromium
@pytest.mark.slow
def test_rules_fail_small_text_in_a_figure(rules_site):
    problems = rules_site[0]["small_text.html"].problems
    assert problems == [
        "figure #fig-a: text of 7 pt at 100 dpi is 8.7 px on the page (scale 0.90), below 9 px",
        "figure #fig-b: text of 7 pt at 72 dpi is 7.0 px on the page (scale 1.00), below 9 px"
    ]


@needs_chromium
@pytest.mark.slow
def test_rules_fail_a_figure_without_caption_or_number(rules_site):
    problems = rules_site[0]["captions.html"].problems
    assert problems == [
        "figure 1 (f100.png) has no caption (give its cell `mystnb.figure` metadata)",
        "figure #fig-a has a caption but no figure number",
        "figure #fig-c has no caption (give its cell `mystnb.figure` metadata)"
    ]


@needs_chromium
@pytest.mark.slow
def test_rules_fail_code_and_outputs_that_overflow(rules_site):
    problems = rules_site[0]["overflow.html"].problems
    assert [p.split(" overflows")[0] for p in problems] == [
        "code input of cell 1 in #s", "table in the output of cell 2 in #s", "code block in #s"
    ]
    assert all("px of content in" in p for p in problems)


@needs_chromium
@pytest.mark.slow
def test_real_browser_on_a_small_site(tmp_path):
    """A good page with a figure, a redirect, a bad page (missing image and script, a console
    error, a traceback in an output) and a notebook page that lost its figure."""
    from PIL import Image

    site = tmp_path / "html"
    (site / "_images").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 30, 30)).save(site / "_images" / "fig.png")
    (site / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=good.html">')
    (site / "good.html").write_text('<html><body><h1>Good</h1><div class="cell_output">' +
                                    _figure("_images/fig.png") +
                                    '</div><a href="bad.html">bad</a></body></html>')
    (site / "bad.html").write_text(
        '<html><body><h1>Bad</h1><img src="_images/missing.png">'
        '<script>console.error("boom")</script>'
        '<div class="cell_output"><pre>Traceback (most recent call last):\n  ...</pre></div>'
        '</body></html>')
    (site / "nb.html").write_text('<html><body><h1>Notebook</h1></body></html>')
    (site / "_sources").mkdir()
    (site / "_sources" / "nb.ipynb").write_text(
        json.dumps({
            "cells": [{
                "cell_type": "code", "metadata": {}, "outputs":
                [_output("image/png", "text/plain")]
            }]
        }))
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
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "# Widgets\n\nInline $y = x + z$ and\n\n$$ f(y) = \\nabla f(y)\\, y $$"),
            new_code_cell('profile = "book"\ndevice = "cpu"', metadata={"tags": ["parameters"]}),
            new_code_cell(
                "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]); plt.show()",
                metadata={"mystnb": {"figure": {"caption": "A line.", "name": "fig-line"}}}),
            new_code_cell("import ipywidgets\n"
                          "ipywidgets.IntSlider(value=3, max=10, description=r'$\\sigma$ level')"),
        ], metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        })
    nbformat.write(nb, tmp_path / "notebooks" / "01_widget.ipynb")
    assert run.main(["--profile", "smoke"], root=tmp_path) == 0
    html = tmp_path / "_build" / "html"
    page = (html / "notebooks" / "01_widget.html").read_text()
    assert "cdn.jsdelivr.net" not in page and "cdnjs" not in page  # served by the book itself
    results = {r.page: r for r in bc.check_book(html)}
    assert all(r.ok for r in results.values()), {p: r.problems for p, r in results.items()}
    assert "1/1 widgets" in results["notebooks/01_widget.html"].notes
    assert (tmp_path / "_build" / "screenshots" / "notebooks" / "01_widget.png").exists()
