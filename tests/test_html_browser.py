"""The HTML report as a reader meets it: parsed (well-formed, self-contained, each footnote once, the commands
that made it), and loaded in a real headless browser (Debian's chromium): no console message, no failed load,
and a screenshot of the whole page in which every table and every plot is drawn.

The browser tests are in the process tier and are skipped, with the reason, where no chromium is installed
(``.ci/run`` installs it with apt-get where it can).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import shlex
from html.parser import HTMLParser

import headless
import pytest
from conftest import ROOT

from ipclab import __version__
from ipclab.cli import main
from ipclab.report import advice, html
from ipclab.report.commands import _html_plots, report_tables
from ipclab.report.select import select_cells

SAMPLE = os.path.join(ROOT, "results", "samples", "sweep.json")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BROWSER = headless.find_browser()
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: Debian's chromium is not installed (apt-get install chromium; "
                            ".ci/run installs it where it runs as root with apt-get)")


class Page(HTMLParser):
    """The page's structure: nesting checked as it goes, ids, links, notes, table cells, images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.notes: dict[int, str] = {}
        self.legend: list[str] = []
        self.codes: list[str] = []
        self.generator: str | None = None
        self._text: list[str] | None = None
        self._note: int | None = None
        self._in_notes = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])
        if tag == "meta" and a.get("name") == "generator":
            self.generator = a.get("content")
        if tag == "section" and a.get("id") == "notes":
            self._in_notes = True
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th", "code") or tag == "li" and self._in_notes:
            self._text = []
            self._note = int(a["id"].split("-")[1]) if tag == "li" and "id" in a else None

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()
        text = "".join(self._text or [])
        if tag in ("td", "th") and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(text)
        elif tag == "code":
            self.codes.append(text)
        elif tag == "li" and self._in_notes:
            if self._note is None:
                self.legend.append(text)
            else:
                mark, _, note = text.partition(" ")
                assert mark == f"[{self._note}]", text  # the note says its number as the marks do
                self.notes[self._note] = note
        elif tag == "section":
            self._in_notes = False
        if tag in ("td", "th", "code", "li"):
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert page.startswith("<!DOCTYPE html>\n")
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack)  # every element closed, in order
    assert len(parser.ids) == len(set(parser.ids))
    return parser


def sample(transports: str | None = None) -> dict:
    with open(SAMPLE, encoding="utf-8") as f:
        return select_cells(json.load(f), transports)


def page_of(result: dict, plots: bool = False, command: str | None = None) -> tuple[str, list]:
    tables = report_tables(result, None)
    images = _html_plots(result)[0] if plots else []
    return html.render(result, tables, advice.report_warnings(result, tables), images, command=command), tables


# -- the page, parsed (fast tier) -----------------------------------------------------------------------------
def test_each_footnote_once_numbered_across_the_page_and_each_mark_names_its_cells_reason():
    result = sample()
    text, tables = page_of(result)
    page = parse(text)
    local = [n for t in tables for n in t.notes]
    assert len(local) > len(set(local))  # the sweep repeats its n/a reasons in every table...
    assert sorted(page.notes.values()) == sorted(set(local))  # ...the page prints each once
    assert list(page.notes) == list(range(1, len(page.notes) + 1))
    for note in page.notes.values():
        assert text.count(html.escape(note)) == 1
    assert len(page.legend) == len(set(page.legend)) == len({x for t in tables for x in t.legend})
    assert all(f"note-{n}" in page.ids for n in page.notes)
    assert all(h[1:] in page.ids for h in page.hrefs if h.startswith("#"))  # every mark's link lands

    # Each marked cell points at the note that gives that cell's reason (n/a cells: the result's own reason).
    cells = {(c["pattern"], c["transport"], c["size_bytes"]): c for c in result["cells"]}
    checked = 0
    for table, parsed in zip(tables, page.tables):
        assert parsed[0] == table.columns
        for r, row in enumerate(parsed[1:]):
            transport = table.transports[r] if table.transports else row[0].split(" [")[0]
            for size, figure in zip(table.sizes, row[1:]):
                cell = cells[(table.pattern, transport, size)]
                if cell["status"] == "n/a":
                    assert figure.startswith("n/a [")
                    assert page.notes[int(figure[5:-1])] == cell["reason"]
                    checked += 1
    assert checked > 50


def test_the_page_names_the_commands_and_version_that_made_it():
    result = sample("pipe")
    result["metadata"] = {**result["metadata"], "argv": ["ipclab", "run", "-t", "pipe", "-s", "64,4K",
                                                         "--output", "my results.json"]}
    page = parse(page_of(result, command="ipclab report 'my results.json' --format html")[0])
    assert page.codes == ["ipclab run -t pipe -s 64,4K --output 'my results.json'",
                          "ipclab report 'my results.json' --format html"]
    assert page.generator == f"ipclab {__version__}"

    # A result from an older ipclab: it says so; a hostile argv is text, never markup, never a crash.
    older = sample("pipe")
    older["metadata"].pop("argv", None)  # written before results recorded their command line
    assert "not recorded" in page_of(older)[0]
    for argv in (["ipclab", "<script>alert(1)</script>"], "rm -rf /", [1, 2], {"a": "b"}, []):
        hostile = copy.deepcopy(older)
        hostile["metadata"]["argv"] = argv
        text = page_of(hostile)[0]
        assert "<script>" not in text
        page = parse(text)
        if argv and isinstance(argv, list) and all(isinstance(a, str) for a in argv):
            assert page.codes[0] == shlex.join(argv)
        else:
            assert "not recorded" in text and len(page.codes) == 0


def test_report_html_records_its_own_command_line(tmp_path, capsys):
    out = tmp_path / "page.html"
    argv = ["report", SAMPLE, "--format", "html", "--transport", "pipe,udp", "-o", str(out), "--no-plots"]
    assert main(argv) == 0
    page = parse(out.read_text(encoding="utf-8"))
    with open(SAMPLE, encoding="utf-8") as f:
        run = json.load(f)["metadata"]["argv"]  # the sweep's own command line, as its run recorded it
    assert page.codes == [shlex.join(run), shlex.join(["ipclab", *argv])]


def test_the_page_is_self_contained_with_its_plots_inline():
    result = sample("pipe,shm")
    tables = report_tables(result, None)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # the page carries the bytes, whatever they draw
    text = html.render(result, tables, [], [("latency", png), ("<b>cpu</b>", png)], command="ipclab report x")
    page = parse(text)
    assert len(page.tables) == len(tables) and len(page.srcs) == 2
    assert all(base64.b64decode(src.split(",", 1)[1]) == png for src in page.srcs)
    assert "<b>" not in text  # a caption is text
    assert all(href.startswith("#") for href in page.hrefs)
    assert "<script" not in text and "<link" not in text and "url(" not in text and "@import" not in text


# -- the page in a browser (process tier) ----------------------------------------------------------------------
def _pixels(png: bytes):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow (a matplotlib dependency) reads the screenshot")
    return image_module.open(io.BytesIO(png)).convert("RGB")


def _drawn(image, box: dict) -> int:
    """How many colours the screenshot has inside ``box``: 1 is an empty area."""
    region = image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["w"]), int(box["y"] + box["h"])))
    return len(region.getcolors(maxcolors=1 << 20) or [])


def _look(path: str, tmp_path) -> headless.Page:
    profile = str(tmp_path / "profile")
    try:
        return headless.open_page(BROWSER, path, profile)
    finally:
        assert headless.survivors(profile) == []  # no chromium process outlives the test


@pytest.mark.process
@needs_browser
def test_chromium_draws_every_table_and_plot_without_a_console_message(tmp_path):
    pytest.importorskip("matplotlib")
    result = sample("pipe,udp,shm,signal")  # n/a cells (notes), a lossy row (legend), every plot kind
    text, tables = page_of(result, plots=True, command="ipclab report sweep.json --format html")
    plots = len(parse(text).srcs)
    path = tmp_path / "report.html"
    path.write_text(text, encoding="utf-8")
    seen = _look(str(path), tmp_path)
    assert seen.problems() == []

    layout = seen.layout
    assert layout["width"] == headless.WIDTH  # nothing wider than the window: no cut-off column
    image = _pixels(seen.screenshot)
    assert image.size == (layout["width"], layout["height"]) and layout["height"] > 1500
    assert _drawn(image, {"x": 0, "y": 0, "w": image.size[0], "h": image.size[1]}) > 50  # not blank
    assert len(layout["tables"]) == len(tables) and len(layout["images"]) == plots >= 3
    for box in layout["tables"]:
        assert box["w"] > 300 and box["h"] > 60 and box["x"] + box["w"] <= image.size[0]
        assert box["y"] + box["h"] <= image.size[1]
        assert _drawn(image, box) > 5, box  # text and rules, not an empty box
    for box in layout["images"]:
        assert box["complete"] and box["natural"][0] > 400 and box["natural"][1] > 300  # the PNG decoded
        assert box["w"] > 400 and box["x"] + box["w"] <= image.size[0]
        assert _drawn(image, box) > 20, box  # the plot is drawn: lines of many colours, not a grey box
    boxes = sorted(layout["tables"] + layout["images"], key=lambda b: b["y"])
    assert all(a["y"] + a["h"] <= b["y"] + 1 for a, b in zip(boxes, boxes[1:]))  # none drawn over another


@pytest.mark.process
@needs_browser
def test_the_browser_check_sees_a_broken_page(tmp_path):
    """The check above would catch a page with a script error, a console message or a missing image."""
    path = tmp_path / "broken.html"
    path.write_text('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>x</title></head><body>'
                    '<img src="missing.png" alt="x"><script>console.warn("careful"); undefinedThing();</script>'
                    "</body></html>", encoding="utf-8")
    problems = "\n".join(_look(str(path), tmp_path).problems())
    assert "console.warning: careful" in problems or "console.warn: careful" in problems
    assert "undefinedThing" in problems and "missing.png" in problems


@pytest.mark.process
@needs_browser
def test_a_run_to_a_page_that_names_its_command(cli, tmp_path):
    run = tmp_path / "run.json"
    argv = ["run", "-t", "pipe,udp", "-s", "0,64", "-n", "200", "-p", "pingpong", "-q", "-o", str(run)]
    cli(*argv, check=True)
    with open(run, encoding="utf-8") as f:
        assert json.load(f)["metadata"]["argv"] == ["ipclab", *argv]
    out = tmp_path / "run.html"
    cli("report", str(run), "--format", "html", "-o", str(out), check=True)
    page = parse(out.read_text(encoding="utf-8"))
    assert page.codes == [shlex.join(["ipclab", *argv]),
                          shlex.join(["ipclab", "report", str(run), "--format", "html", "-o", str(out)])]
    assert page.notes and page.tables
    seen = _look(str(out), tmp_path)
    assert seen.problems() == []
    assert len(seen.layout["tables"]) == len(page.tables) and all(i["complete"] for i in seen.layout["images"])
