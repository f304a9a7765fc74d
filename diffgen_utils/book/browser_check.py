"""Open every page of the built book in a real headless Chromium and check what a reader sees.

    python -m diffgen_utils.browser_check [_build/html] [--screenshots _build/screenshots]
                                          [--only PATTERN]

For each HTML page (genindex, search, _static/ and _sources/ are skipped; a redirect page only
has its target checked) it checks:

- links: every local href/src of the page resolves to a file of the book (checked on the HTML
  as written, without the browser);
- images: every <img> has loaded (complete, naturalWidth > 0);
- scripts: no SEVERE entry in the browser console (a failed script, a 404, a JS exception);
- outputs: no error in a notebook cell (a traceback, an error output, stderr containing "Error");
- figures: a page made from a notebook shows at least as many images in its outputs as the
  executed notebook (`_sources/<page>.ipynb`) has image outputs, and at least one, unless a
  cell of the notebook is tagged `text-only`;
- widgets: a page whose notebook has widget views renders them from the saved widget state
  (`.widget-subarea` elements with content; no "Error displaying widget");
- math: MathJax has finished and left no error (`mjx-merror`);
- code: no code block (a cell's input, a cell's output, a code block of the prose, a scrolling
  box inside an output such as a wide table's) overflows its column: scrollWidth may exceed
  clientWidth by at most OVERFLOW_SLACK_PX (2) px. Widgets' insides are not checked.

The figure rules. A *figure* is an <img> in a cell output (`.cell_output img`) that is neither
inside a widget (ipywidgets draw their own images) nor inside an HTML table (a grid of images
laid out as a table belongs to the table); images with no layout box (a collapsed output) are
not measured. The book's figures are PNGs that matplotlib saved at plotting.DPI with
a tight bounding box, and captioned through the cell's `mystnb.figure` metadata, which MyST-NB
renders as `<figure id=NAME><img><figcaption><p><span class="caption-number">Figure N </span>
<span class="caption-text">...</span>`. In the book built at 573515b, at the 1280 px window,
every figure is shown at its natural size (scale 1.00: the column is 688 px, the widest figure
672 px). Each page's line of the report gives its smallest scale and figure text.

- figure scale: a figure or a widget's image is shown at least FIGURE_MIN_SCALE (80%) of its
  natural width (rendered width / naturalWidth);
- captions: every figure sits in a <figure> of its own output with a non-empty <figcaption> that
  carries a number (`.caption-number`, the `mystnb.figure` metadata with numfig on);
- figure text: text in a figure is at least MIN_TEXT_PX (9) px high on the page. A PNG's text
  cannot be read from the DOM, so it is computed as scale x FIGURE_FONT_PT x dpi / 72: dpi from
  the PNG's pHYs chunk (matplotlib writes the savefig dpi there; a PNG without it, an SVG or a
  widget image is not measured), FIGURE_FONT_PT (7 pt) the smallest text the book's figures may
  be drawn with (plotting.MIN_FONT_PT; `plotting.figure_problems` checks the figures that the
  tests draw against it). The notebooks record no font size per figure, so this is the size of
  the smallest text a figure is allowed to have, not of the text it has: a figure drawn with
  smaller text than that is not caught here. At dpi 100 and scale 1 it is 9.7 px; below a
  scale of 0.93 it fails.

It saves a full-page screenshot of each page to `<screenshots>/<page>.png`, prints one line per
page and exits 1 if any page fails (2 if Chromium or chromedriver are missing).

The book is served from a local http.server on 127.0.0.1. The browser resolves no other host
(--host-resolver-rules), so a page that needs the network (a CDN) fails here exactly as it
would for an offline reader. Chromium and chromedriver are Debian's (`apt-get install chromium
chromium-driver`); $CHROMIUM and $CHROMEDRIVER override their paths.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import fnmatch
import functools
import html.parser
import http.server
import json
import os
import posixpath
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
]
WINDOW = (1280, 900)
SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
# myst-nb's HTML render priority (myst_nb.core.render.base_render_priority): the first mime type
# of an output found in this list is the one shown.
RENDER_PRIORITY = [
    "application/vnd.jupyter.widget-view+json", "application/javascript", "text/html",
    "image/svg+xml", "image/png", "image/gif", "image/jpeg", "text/markdown", "text/latex",
    "text/plain"
]
LINK_ATTRIBUTES = {
    "a": "href", "link": "href", "img": "src", "script": "src", "source": "src", "iframe": "src",
    "video": "src", "audio": "src"
}
TEXT_ONLY_TAG = "text-only"
PAGE_TIMEOUT = 30  # seconds for a page to load, its math to typeset and its images to load
WIDGET_TIMEOUT = 15  # seconds for the widgets of a page to render
FIGURE_MIN_SCALE = 0.8  # a figure is shown at least this share of its natural width
FIGURE_FONT_PT = 7.0  # the smallest text a figure may be drawn with (plotting.MIN_FONT_PT)
MIN_TEXT_PX = 9.0  # the smallest text of a figure on the page
OVERFLOW_SLACK_PX = 2  # a code block's content may be this much wider than the block

# ---------------------------------------------------------------------------- pure helpers


def html_pages(root) -> list[str]:
    """The book's pages, as paths relative to `root` with '/' separators, sorted."""
    root = Path(root)
    pages = []
    for path in root.rglob("*.html"):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIP_DIRS or rel.as_posix() in SKIP_PAGES:
            continue
        pages.append(rel.as_posix())
    return sorted(pages)


def local_target(page: str, url: str) -> str | None:
    """The book-relative file that `url`, written in `page`, points to; None if not local.

    External URLs (any scheme or host), `data:`/`mailto:`/`javascript:` and same-page anchors are
    not local. Query and fragment are dropped. A target above the book's root stays as '../x'."""
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    path = unquote(parts.path)
    if not path:
        return None
    if path.startswith("/"):
        joined = path.lstrip("/")
    else:
        joined = posixpath.join(posixpath.dirname(page), path)
    target = posixpath.normpath(joined)
    if path.endswith("/"):
        target = posixpath.join(target, "index.html")
    return target


def target_exists(root, target: str) -> bool:
    """True if the book-relative `target` is a file of the book (a folder: its index.html)."""
    if target == ".." or target.startswith("../"):
        return False
    path = Path(root) / target
    return path.is_file() or (path.is_dir() and (path / "index.html").is_file())


class _Links(html.parser.HTMLParser):

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.refresh: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = LINK_ATTRIBUTES.get(tag)
        if name and attrs.get(name):
            self.urls.append(attrs[name])
        if tag == "img" and attrs.get("srcset"):
            self.urls += [part.split()[0] for part in attrs["srcset"].split(",") if part.strip()]
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            content = attrs.get("content") or ""
            _, _, url = content.partition("url=")
            self.refresh = url.strip().strip("'\"") or None


def page_links(text: str) -> tuple[list[str], str | None]:
    """The href/src URLs of an HTML text and, for a redirect page, its target URL."""
    parser = _Links()
    parser.feed(text)
    return parser.urls, parser.refresh


def broken_links(root, page: str, text: str | None = None) -> list[str]:
    """The local URLs of `page` that point to no file of the book (each once, in order)."""
    text = (Path(root) / page).read_text(errors="replace") if text is None else text
    urls, refresh = page_links(text)
    broken = []
    for url in urls + ([refresh] if refresh else []):
        target = local_target(page, url)
        if target is not None and not target_exists(root, target) and url not in broken:
            broken.append(url)
    return broken


def shown_mime(output: dict) -> str | None:
    """The mime type myst-nb shows for a display_data/execute_result output."""
    data = output.get("data") or {}
    return next((m for m in RENDER_PRIORITY if m in data), None)


@dataclass
class NotebookExpectation:
    """What the page of an executed notebook must show."""

    figures: int = 0  # image outputs that the page shows
    widgets: int = 0  # widget views
    errors: int = 0  # error outputs
    text_only: bool = False


def notebook_expectation(nb: dict) -> NotebookExpectation:
    """Count what an executed notebook (nbformat 4 JSON) puts on its page."""
    expect = NotebookExpectation()
    for cell in nb.get("cells", []):
        tags = set((cell.get("metadata") or {}).get("tags") or [])
        if TEXT_ONLY_TAG in tags:
            expect.text_only = True
        if cell.get("cell_type") != "code" or tags & {"remove-cell", "remove-output"}:
            continue
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                expect.errors += 1
            elif kind in ("display_data", "execute_result"):
                mime = shown_mime(output)
                if mime and mime.startswith("image/"):
                    expect.figures += 1
                elif mime == "application/vnd.jupyter.widget-view+json":
                    expect.widgets += 1
    return expect


def page_notebook(root, page: str) -> Path | None:
    """The executed notebook a page was made from (Jupyter Book copies it to _sources/)."""
    path = Path(root) / "_sources" / Path(page).with_suffix(".ipynb")
    return path if path.is_file() else None


def screenshot_path(folder, page: str) -> Path:
    return Path(folder) / Path(page).with_suffix(".png")


# ---------------------------------------------------------------------------- figures and code


def png_dpi(data: bytes | None) -> float | None:
    """The resolution a PNG records in its pHYs chunk (dots per inch), or None."""
    if not data or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos = 8
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + size]
        if kind == b"pHYs" and len(body) == 9 and body[8] == 1:  # unit 1: per metre
            return int.from_bytes(body[:4], "big") * 0.0254
        if kind in (b"IDAT", b"IEND"):  # pHYs comes before the image data
            return None
        pos += 12 + size
    return None


def image_bytes(root, page: str, src: str) -> bytes | None:
    """The bytes of an image of `page`: a file of the book or a base64 data: URL."""
    if src.startswith("data:"):
        head, _, body = src.partition(",")
        return base64.b64decode(body) if head.endswith(";base64") else None
    target = local_target(page, src)
    path = Path(root) / target if target and target_exists(root, target) else None
    return path.read_bytes() if path and path.is_file() else None


def is_figure(image: dict) -> bool:
    """An output image that the figure rules apply to: not a widget's, not in a table."""
    return not image["widget"] and not image["table"]


def image_label(image: dict, k: int) -> str:
    """How a problem names an output image: its figure's name, else its place and file."""
    if image.get("id"):
        return f"figure #{image['id']}"
    kind = "widget image" if image["widget"] else "figure"
    return f"{kind} {k} ({posixpath.basename(image['src'])[:24] or 'inline'})"


def image_scale(image: dict) -> float | None:
    """Rendered width / natural width of an output image; None if it has not loaded."""
    return image["width"] / image["natural"] if image["natural"] else None


def scale_problem(image: dict, label: str) -> str | None:
    scale = image_scale(image)
    if image["table"] or scale is None or scale >= FIGURE_MIN_SCALE:
        return None
    return (f"{label} shown at {image['width']:.0f} of {image['natural']} px ({scale:.0%}), "
            f"below {FIGURE_MIN_SCALE:.0%} of its natural width")


def caption_problem(image: dict, label: str) -> str | None:
    if not is_figure(image):
        return None
    if not image["caption"]:
        return f"{label} has no caption (give its cell `mystnb.figure` metadata)"
    if not image["number"]:
        return f"{label} has a caption but no figure number"
    return None


def text_px(image: dict, dpi: float | None) -> float | None:
    """The smallest text a figure may have, in px on the page (see the module docstring)."""
    scale = image_scale(image)
    if not is_figure(image) or not dpi or scale is None:
        return None
    return scale * FIGURE_FONT_PT * dpi / 72


def text_problem(image: dict, label: str, dpi: float | None) -> str | None:
    px = text_px(image, dpi)
    if px is None or px >= MIN_TEXT_PX:
        return None
    return (f"{label}: text of {FIGURE_FONT_PT:g} pt at {dpi:.0f} dpi is {px:.1f} px on the "
            f"page (scale {image_scale(image):.2f}), below {MIN_TEXT_PX:g} px")


def output_image_problems(images: list[dict], dpis: list[float | None]) -> list[str]:
    """The figure rules on the output images of a page (INSPECT_JS's `figures`), each with
    the dpi its PNG records (or None)."""
    problems = []
    for k, (image, dpi) in enumerate(zip(images, dpis), start=1):
        label = image_label(image, k)
        found = [
            scale_problem(image, label),
            caption_problem(image, label),
            text_problem(image, label, dpi)
        ]
        problems += [p for p in found if p]
    return problems


def figure_notes(images: list[dict], dpis: list[float | None]) -> list[str]:
    """The smallest figure scale and figure text of a page, for its line of the report."""
    scales = [image_scale(i) for i in images if not i["table"] and image_scale(i) is not None]
    texts = [t for t in map(text_px, images, dpis) if t is not None]
    return ([f"scale >= {min(scales):.2f}"] if scales else []) + \
        ([f"text >= {min(texts):.1f} px"] if texts else [])


def overflow_problems(blocks: list[dict]) -> list[str]:
    """One problem per code block that overflows (INSPECT_JS's `overflows`)."""
    problems = []
    for b in blocks:
        where = f"{b['kind']} of cell {b['cell']}" if b["cell"] else b["kind"]
        where += f" in #{b['section']}" if b.get("section") else ""
        problems.append(f"{where} overflows its column: {b['scroll']} px of content in "
                        f"{b['client']} px ({b['line']!r})")
    return problems


# ---------------------------------------------------------------------------- the browser

# Runs in the page after load, math and widgets: everything the checks need, in one object.
# arguments[0]: OVERFLOW_SLACK_PX.
INSPECT_JS = r"""
const text = el => (el.innerText || el.textContent || '');
const shown = el => el.getClientRects().length > 0 && el.getBoundingClientRect().width > 0;
const inWidget = el => !!el.closest('.widget-subarea, .jupyter-widgets');
const sub = (el, sel) => {
    const s = el && el.querySelector(sel);
    return s ? text(s).trim() : '';
};
const figure = img => {  // an output image and the <figure> of its own output, if any
    const fig = img.closest('figure');
    const own = fig && fig.closest('.cell_output') === img.closest('.cell_output') ? fig : null;
    const cap = own && own.querySelector('figcaption');
    return {src: img.getAttribute('src') || '', width: img.getBoundingClientRect().width,
            natural: img.naturalWidth, id: own ? own.id : '', widget: inWidget(img),
            table: !!img.closest('.cell_output table'),
            caption: !cap ? '' : cap.querySelector('.caption-text')
                ? sub(cap, '.caption-text') : text(cap).trim(),
            number: sub(cap, '.caption-number')};
};
const blocks = new Set(document.querySelectorAll(
    'pre, div.highlight, .cell_input, .cell_output, .cell_output .output'));
for (const el of document.querySelectorAll('.cell_output *'))
    if (/auto|scroll/.test(getComputedStyle(el).overflowX)) blocks.add(el);
const over = Array.from(blocks).filter(el => !inWidget(el) && shown(el)
    && el.scrollWidth > el.clientWidth + arguments[0])
    .sort((a, b) => a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1);
const cells = Array.from(document.querySelectorAll('div.cell'));
const longest = el => text(el).split('\n').reduce((a, b) => b.length > a.length ? b : a, '');
const kind = el => el.closest('.cell_input') ? 'code input'
    : !el.closest('.cell_output') ? 'code block'
    : el.querySelector('table') ? 'table in the output' : 'output';
const overflow = el => ({
    kind: kind(el), cell: cells.indexOf(el.closest('div.cell')) + 1,
    section: (el.closest('section[id]') || {}).id || '',
    scroll: el.scrollWidth, client: el.clientWidth, line: longest(el).trim().slice(0, 60)});
const imgs = Array.from(document.images);
const outputs = Array.from(document.querySelectorAll('.cell_output'));
const views = Array.from(document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]'));
const rendered = views.filter(v => {
    const prev = v.previousElementSibling;
    return prev && prev.classList.contains('widget-subarea') && prev.childElementCount > 0;
});
const last = el => text(el).trim().split('\n').slice(-1)[0].slice(0, 160);
const problems = [];
for (const el of document.querySelectorAll(
        '.cell_output .output.traceback, .cell_output .output.error'))
    problems.push('error output: ' + last(el));
for (const el of document.querySelectorAll('.cell_output .output.stderr'))
    if (/Error/.test(text(el))) problems.push('stderr: ' + last(el));
for (const el of outputs)
    if (text(el).includes('Traceback (most recent call last)'))
        problems.push('traceback in an output');
return {
    title: document.title,
    images: imgs.length,
    broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                       .map(i => i.getAttribute('src') || '(no src)'),
    output_images: outputs.reduce((n, el) => n + el.querySelectorAll('img, svg.figure').length, 0),
    output_problems: problems,
    widget_views: views.length,
    widgets_rendered: rendered.length,
    widget_elements: document.querySelectorAll('[class*="widget-"], .jupyter-widgets').length,
    widget_errors: Array.from(document.querySelectorAll('.widget-subarea, .cell_output'))
                        .filter(el => /Error displaying widget/.test(text(el))).length,
    widget_fallbacks: document.querySelectorAll('img.jupyter-widget').length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    figures: Array.from(document.querySelectorAll('.cell_output img')).filter(shown).map(figure),
    overflows: over.filter(a => !over.some(b => b !== a && a.contains(b))).map(overflow),
    width: document.documentElement.scrollWidth,
    height: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
};
"""

# Resolves when MathJax (if the page loads it) has typeset and every image has loaded.
SETTLE_JS = r"""
const done = arguments[arguments.length - 1];
for (const img of document.images) img.loading = 'eager';
const math = (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? MathJax.startup.promise.catch(() => null) : Promise.resolve();
const images = Promise.all(Array.from(document.images).map(img => img.complete ? null :
    new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
Promise.all([math, images]).then(() => done(true), () => done(false));
"""

# Resolves once every image is decoded and two more frames have been painted.
PAINTED_JS = r"""
const done = arguments[arguments.length - 1];
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
Promise.all(Array.from(document.images).map(img => img.decode().catch(() => null)))
    .then(frame).then(frame).then(() => done(true));
"""

WIDGETS_SETTLED_JS = r"""
const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
let rendered = 0;
for (const v of views) {
    const prev = v.previousElementSibling;
    if (prev && prev.classList.contains('widget-subarea') && prev.childElementCount > 0)
        rendered++;
}
return rendered === views.length
    || document.body.innerText.includes('Error displaying widget');
"""


@dataclass
class PageResult:
    page: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def do_GET(self):
        # Browsers ask for /favicon.ico on their own; the book links none (a page that links a
        # missing one fails the link check instead).
        if urlsplit(self.path).path == "/favicon.ico" and \
                not Path(self.directory, "favicon.ico").exists():
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


@contextlib.contextmanager
def serve(root):
    """Serve `root` on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium_missing() -> str | None:
    """Why the browser check cannot run here, or None."""
    for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not Path(path).exists():
            return f"{name} not found at {path} (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return None


@contextlib.contextmanager
def chromium(profile_dir):
    """A headless Chromium driven by chromedriver, with a fresh profile in `profile_dir`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [
            f"--user-data-dir={profile_dir}", f"--window-size={WINDOW[0]},{WINDOW[1]}"
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download a driver
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT)
        driver.set_script_timeout(PAGE_TIMEOUT)
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver, path: Path, width: int, height: int) -> None:
    """PNG of the whole page, not only the window: the viewport is made as tall as the page
    (DevTools protocol), the images are decoded and two frames painted, then it is captured.
    (Chromium's own captureBeyondViewport left figures blank and the layout shifted here.)"""
    width, height = max(int(width), WINDOW[0]), max(1, min(int(height), 30000))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_async_script(PAINTED_JS)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def check_page(driver, base_url: str, root: Path, page: str, screenshots: Path) -> PageResult:
    """Load one page and run every check on it."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    result, t0 = PageResult(page), time.perf_counter()
    text = (root / page).read_text(errors="replace")
    result.problems += [f"broken link: {url}" for url in broken_links(root, page, text)]
    if page_links(text)[1]:  # a redirect page: its target is checked as a page of its own
        result.notes.append(f"redirect to {page_links(text)[1]}")
        result.seconds = time.perf_counter() - t0
        return result
    notebook = page_notebook(root, page)
    expect = notebook_expectation(json.loads(notebook.read_text())) if notebook else None
    try:
        driver.get(base_url + page)
        if not driver.execute_async_script(SETTLE_JS):
            result.problems.append("math or images did not settle")
        has_views = driver.execute_script(
            "return document.querySelectorAll("
            "'script[type=\"application/vnd.jupyter.widget-view+json\"]').length")
        if has_views:
            try:
                WebDriverWait(driver, WIDGET_TIMEOUT,
                              0.2).until(lambda d: d.execute_script(WIDGETS_SETTLED_JS))
            except TimeoutException:
                pass  # reported below with the counts
        info = driver.execute_script(INSPECT_JS, OVERFLOW_SLACK_PX)
        console = driver.get_log("browser")
    except WebDriverException as e:
        result.problems.append(f"the browser failed on the page: {e.msg or e}")
        result.seconds = time.perf_counter() - t0
        return result

    result.problems += [f"broken image: {src}" for src in info["broken_images"]]
    result.problems += [
        f"console: {entry['message'][:240]}" for entry in console if entry.get("level") == "SEVERE"
    ]
    result.problems += info["output_problems"]
    if info["math_errors"]:
        result.problems.append(f"{info['math_errors']} math error(s) (mjx-merror)")
    if expect is not None:
        if expect.errors:
            result.problems.append(f"the notebook has {expect.errors} error output(s)")
        if info["output_images"] < expect.figures:
            result.problems.append(f"{info['output_images']} image(s) in the outputs, the "
                                   f"notebook has {expect.figures} image output(s)")
        if expect.figures == 0 and not expect.text_only:
            result.problems.append("no figure: the notebook has no image output (tag a cell "
                                   f"'{TEXT_ONLY_TAG}' if that is by design)")
        if expect.widgets and not info["widget_views"]:
            result.problems.append(f"the notebook has {expect.widgets} widget view(s), the page "
                                   "none")
    if info["widget_views"]:
        if info["widgets_rendered"] < info["widget_views"] or not info["widget_elements"]:
            result.problems.append(f"widgets: {info['widgets_rendered']} of "
                                   f"{info['widget_views']} view(s) rendered")
        if info["widget_errors"] or info["widget_fallbacks"]:
            result.problems.append(f"widgets: {info['widget_errors']} 'Error displaying widget',"
                                   f" {info['widget_fallbacks']} fallback image(s) left")
    result.problems += overflow_problems(info["overflows"])
    dpis = [png_dpi(image_bytes(root, page, image["src"])) for image in info["figures"]]
    result.problems += output_image_problems(info["figures"], dpis)
    result.notes.append(f"{info['images']} img")
    result.notes += figure_notes(info["figures"], dpis)
    if expect is not None:
        result.notes.append(f"{info['output_images']}/{expect.figures} figures")
    if info["widget_views"]:
        result.notes.append(f"{info['widgets_rendered']}/{info['widget_views']} widgets")
    try:
        full_page_screenshot(driver, screenshot_path(screenshots, page), info["width"],
                             info["height"])
        result.notes.append(f"{info['height']} px")
    except WebDriverException as e:
        result.problems.append(f"screenshot failed: {e.msg or e}")
    result.seconds = time.perf_counter() - t0
    return result


def check_book(root, screenshots=None, only: str | None = None,
               out=sys.stdout) -> list[PageResult]:
    """Check every page of the built book at `root`; return one result per page."""
    root = Path(root).resolve()
    screenshots = Path(screenshots) if screenshots else root.parent / "screenshots"
    pages = [p for p in html_pages(root) if not only or fnmatch.fnmatch(p, only)]
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {root}")
    if not only:
        shutil.rmtree(screenshots, ignore_errors=True)
    screenshots.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            serve(root) as base_url, chromium(profile) as driver:
        for page in pages:
            result = check_page(driver, base_url, root, page, screenshots)
            results.append(result)
            status = "ok  " if result.ok else "FAIL"
            print(f"{status} {page}  ({', '.join(result.notes)}; {result.seconds:.1f} s)",
                  file=out, flush=True)
            for problem in result.problems:
                print(f"       {problem}", file=out, flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffgen_utils.browser_check",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", nargs="?", default="_build/html", help="the built book")
    parser.add_argument("--screenshots", help="default: screenshots/ beside the html folder")
    parser.add_argument("--only", help="check only the pages matching this glob")
    args = parser.parse_args(argv)
    missing = chromium_missing()
    if missing:
        print(f"browser check: {missing}", file=sys.stderr)
        return 2
    if not (Path(args.html) / "index.html").exists():
        print(f"browser check: no book at {args.html} (run python -m diffgen_utils.run)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    results = check_book(args.html, args.screenshots, args.only)
    failed = [r.page for r in results if not r.ok]
    shots = Path(args.screenshots) if args.screenshots else \
        Path(args.html).resolve().parent / "screenshots"
    print(f"browser check: {len(results)} pages, {len(failed)} failed, "
          f"{time.perf_counter() - t0:.1f} s; screenshots in {shots}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
