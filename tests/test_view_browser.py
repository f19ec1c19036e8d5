"""`cnncalc view` pages in a real browser: headless Chromium driven by selenium through the
system chromedriver (Debian's `chromium` and `chromium-driver`; .ci/run installs them).

Without them the tests skip, unless CNNCALC_REQUIRE_BROWSER=1 (CI sets it), when they fail.
Screenshots of alexnet, googlenet, resnet50 and unet are taken into the test's temporary folder;
`CNNCALC_UPDATE_SCREENSHOTS=1` also writes them to docs/img/view-*.png (docs/view.md shows them):

    CNNCALC_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_view_browser.py -k screenshot
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from cnncalc import analyze, load_spec
from cnncalc import view
from cnncalc.render import analysis_dict

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if os.path.exists(p)), shutil.which("chromium"))
CHROMEDRIVER = next((p for p in ("/usr/bin/chromedriver",) if os.path.exists(p)),
                    shutil.which("chromedriver"))
REQUIRED = os.environ.get("CNNCALC_REQUIRE_BROWSER") == "1"
WINDOW = (1600, 1000)


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    if not CHROMIUM:
        return "chromium is not installed (apt-get install chromium)"
    if not CHROMEDRIVER:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"CNNCALC_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                # without these Chromium reaches out to Google (updates, sync, field trials),
                # which would read as the page's requests
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-default-apps",
                "--disable-extensions", "--hide-scrollbars",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Written once per spec (or pair) for the module: path and the analyses' JSON."""
    folder = tmp_path_factory.mktemp("pages")
    made: dict[tuple[str, ...], tuple[Path, list]] = {}

    def make(*specs: str):
        if specs not in made:
            analyses = [analyze(load_spec(s), explain=True) for s in specs]
            comparison = None
            if len(specs) > 1:
                from cnncalc.compare import compare

                comparison = compare(analyses)
            path = folder / ("-vs-".join(specs) + ".html")
            view.write(analyses, path, comparison=comparison)
            made[specs] = (path, analyses)
        return made[specs]

    return make


def open_page(driver, path: Path) -> dict:
    """Load the page; what it logged and which requests it made while loading."""
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get_log("performance")  # start from an empty log: only this page's events follow
    url = path.resolve().as_uri()
    driver.get(url)
    deadline = time.time() + 60
    while not driver.execute_script("return document.body.getAttribute('data-ready')"):
        assert time.time() < deadline, "the page never finished drawing"
        time.sleep(0.05)
    return {"url": url}


def requests_made(driver, url: str) -> list[str]:
    events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    urls = [e["params"]["request"]["url"] for e in events
            if e["method"] == "Network.requestWillBeSent"]
    return [u for u in urls if u != url and not u.startswith("data:")]


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def js(driver, code: str, *args):
    return driver.execute_script(code, *args)


def shown_paths(driver, k: int = 0) -> list[str]:
    return js(driver, """
        var root = document.querySelectorAll('section.view')[arguments[0]];
        return Array.from(root.querySelectorAll('svg g.node')).map(n => n.getAttribute('data-path'));
    """, k)


def click(driver, css: str, k: int | None = 0):
    """Click the element ``css`` in the ``k``th view (None: anywhere on the page)."""
    root = driver if k is None else driver.find_elements("css selector", "section.view")[k]
    element = root.find_element("css selector", css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})",
                          element)
    element.click()


def depth_button(driver, depth: int | None, k: int = 0):
    click(driver, f'button[data-depth="{"all" if depth is None else depth}"]', k)


# --------------------------------------------------------------------------------------------


# what each screenshot shows: the page as opened, then a block opened and a layer selected (its
# figures and formulas in the panel, the graph scrolled to it)
SHOTS = {
    "alexnet": [("select", "conv2")],
    "googlenet": [("open", "inception3b.b2"), ("select", "inception3b.b2.conv")],
    "resnet50": [("open", "layer1.0"), ("select", "layer1.0.conv2")],
    "unet": [("depth", 1), ("select", "cat4")],
}


@pytest.mark.parametrize("spec", SHOTS)
def test_loads_offline_without_errors_and_screenshot(spec, browser, pages, tmp_path):
    path, _ = pages(spec)
    opened = open_page(browser, path)
    assert console_errors(browser) == []
    assert requests_made(browser, opened["url"]) == []
    for action, what in SHOTS[spec]:
        if action == "depth":
            depth_button(browser, what)
        elif action == "open":
            click(browser, f'g.node[data-path="{what}"] g.toggle')
        else:
            click(browser, f'g.node[data-path="{what}"]')
    assert console_errors(browser) == []
    shot = tmp_path / f"view-{spec}.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    if os.environ.get("CNNCALC_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "img" / f"view-{spec}.png")


@pytest.mark.parametrize("spec", ["googlenet", "resnet50", "unet"])
def test_the_nodes_at_each_depth_are_the_rows_of_table_at_that_depth(spec, browser, pages):
    path, (analysis,) = pages(spec)
    open_page(browser, path)
    start = view.view_dict(analysis)["start_depth"]
    assert shown_paths(browser) == [r.path for r in analysis.at_depth(start)]
    depths = sorted({r.depth for r in analysis.rows})
    for depth in [*depths, None]:
        depth_button(browser, depth)
        rows = analysis.at_depth(depth)
        assert shown_paths(browser) == [r.path for r in rows], depth
        table = js(browser, "return Array.from(document.querySelectorAll('table.rows tbody tr'))"
                            ".map(t => t.cells[0].textContent)")
        assert table == [r.path for r in rows]
    assert console_errors(browser) == []


def test_opening_a_block_shows_its_children_and_closing_it_hides_them(browser, pages):
    path, (analysis,) = pages("resnet50")
    open_page(browser, path)
    depth_button(browser, 1)
    assert "layer1" in shown_paths(browser)
    click(browser, 'g.node[data-path="layer1"] g.toggle')
    shown = shown_paths(browser)
    assert "layer1" not in shown
    assert [p for p in shown if p.startswith("layer1.")] == ["layer1.0", "layer1.1", "layer1.2"]
    assert js(browser, "return document.querySelectorAll('g.cluster').length") == 1
    click(browser, 'g.node[data-path="layer1.0"] g.toggle')
    assert [p for p in shown_paths(browser) if p.startswith("layer1.0.")] == [
        r.path for r in analysis.rows if r.path.startswith("layer1.0.") and r.depth == 3]
    # a merge point for the residual add, inside the open block
    assert js(browser, "return document.querySelectorAll('g.merge[data-path=\"layer1.0\"]').length") == 1
    click(browser, 'g.cluster[data-row] g.toggle')  # the outer block, layer1: closed again
    assert shown_paths(browser) == [r.path for r in analysis.at_depth(1)]
    assert console_errors(browser) == []


def _shown_details(browser) -> dict[str, str]:
    return js(browser, """
        var out = {};
        document.querySelectorAll('.details dd').forEach(d => out[d.dataset.field] = d.textContent);
        var f = document.querySelector('.details pre.formula');
        out.formula = f ? f.textContent : '';
        out.path = document.querySelector('.details h2').textContent;
        return out;
    """)


def _exact(text: str) -> int:
    return int(text.split(" ")[0].replace(",", ""))


@pytest.mark.parametrize("spec, paths", [
    ("alexnet", ["conv1", "pool1", "fc6"]),
    ("googlenet", ["conv2", "inception3a.b2", "inception4a", "aux1.conv"]),
    ("resnet50", ["layer1.0", "layer2.0.downsample.0", "fc"]),
    ("unet", ["down1.0", "upconv4", "cat4", "head"]),
])
def test_the_numbers_shown_for_a_node_are_the_json_ones(spec, paths, browser, pages):
    path, (analysis,) = pages(spec)
    open_page(browser, path)
    depth_button(browser, None)
    rows = {r["path"]: r for r in analysis_dict(analysis, None)["layers"]}
    for depth in (1, 2, 3):
        rows.update({r["path"]: r for r in analysis_dict(analysis, depth)["layers"]})
    for p in paths:
        row = rows[p]
        depth_button(browser, row["depth"] if not row["leaf"] else None)
        click(browser, f'g.node[data-path="{p}"]')
        shown = _shown_details(browser)
        assert shown["path"] == p
        assert _exact(shown["params"]) == row["params"]
        assert _exact(shown["trainable"]) == row["trainable_params"]
        assert _exact(shown["buffers"]) == row["buffers"]
        assert _exact(shown["MACs"]) == row["macs"]
        assert _exact(shown["activations"]) == row["activation_bytes"]
        assert shown["output"] == "×".join(map(str, row["output"]))
        assert shown["input"] == "×".join(map(str, row["input"]))
        assert shown["receptive field"] in (str(row["rf"]), "×".join(map(str, row["rf_hw"])))
        assert shown["formula"] == "\n".join(row["formula"])
        selected = js(browser, "return document.querySelector('table.rows tr.selected').cells[0].textContent")
        assert selected == p
    assert console_errors(browser) == []


def test_floor_warnings_are_marked_on_the_node(browser, pages):
    path, (analysis,) = pages("resnet50")
    open_page(browser, path)
    depth_button(browser, None)
    for mark, severity in (("warned", "warning"), ("noted", "note")):
        marked = js(browser, f"return Array.from(document.querySelectorAll('g.node.{mark}'))"
                             ".map(n => n.getAttribute('data-path'))")
        assert sorted(marked) == sorted(w.path for w in analysis.warnings
                                        if w.severity == severity)
    click(browser, 'g.node[data-path="layer3.0.downsample.0"]')
    text = js(browser, "return document.querySelector('.details .warning').textContent")
    assert text.startswith("warning: layer3.0.downsample.0: height and width")


def test_the_table_sorts_and_a_row_selects_its_node(browser, pages):
    path, (analysis,) = pages("alexnet")
    open_page(browser, path)
    rows = analysis.at_depth(None)
    headers = js(browser, "return Array.from(document.querySelectorAll('table.rows th')).map(t => t.textContent)")
    click(browser, f"table.rows th:nth-child({headers.index('MACs') + 1})")

    def order():
        return js(browser, "return Array.from(document.querySelectorAll('table.rows tbody tr'))"
                           ".map(t => t.cells[0].textContent)")

    by_macs = [r.path for r in sorted(rows, key=lambda r: -r.macs)]  # stable: ties in row order
    assert order() == by_macs
    click(browser, f"table.rows th:nth-child({headers.index('MACs') + 1})")
    assert order() == [r.path for r in sorted(rows, key=lambda r: r.macs)]
    click(browser, f"table.rows th:nth-child({headers.index('Params') + 1})")
    assert order() == [r.path for r in sorted(rows, key=lambda r: -r.params)]
    click(browser, "table.rows th:nth-child(1)")
    assert order() == sorted(r.path for r in rows)
    click(browser, f"table.rows th:nth-child({headers.index('Output') + 1})")  # by size
    assert order() == [r.path for r in sorted(rows, key=lambda r: -r.activation_bytes)]
    click(browser, 'table.rows tr[data-row] td')  # the first row now: conv1
    assert js(browser, "return document.querySelector('g.node.selected').getAttribute('data-path')") == "conv1"
    click(browser, 'g.node[data-path="fc7"]')
    assert js(browser, "return document.querySelector('table.rows tr.selected').cells[0].textContent") == "fc7"


def test_the_shade_switch_colours_nodes_by_the_chosen_share(browser, pages):
    path, (analysis,) = pages("alexnet")
    open_page(browser, path)
    data = view.view_dict(analysis)
    paths = [r.path for r in analysis.rows]
    for metric in ("params", "activation_bytes", "macs"):
        click(browser, f'button[data-metric="{metric}"]')
        fills = js(browser, "return Array.from(document.querySelectorAll('g.node')).map("
                            "n => [n.getAttribute('data-path'), n.querySelector('rect').getAttribute('fill')])")
        assert {p: f for p, f in fills} == {p: data["nodes"][paths.index(p)]["shade"][metric]
                                            for p, _ in fills}


def test_two_specs_side_by_side_with_the_ratios(browser, pages):
    path, analyses = pages("inception-naive", "inception-bottleneck")
    opened = open_page(browser, path)
    assert console_errors(browser) == [] and requests_made(browser, opened["url"]) == []
    assert js(browser, "return document.querySelectorAll('section.view').length") == 2
    totals = js(browser, "return Array.from(document.querySelectorAll('.comparison table.totals tr'))"
                         ".map(r => Array.from(r.cells).map(c => c.textContent))")
    assert totals[0][-1] == "inception-bottleneck vs inception-naive"
    macs = next(r for r in totals if r[0] == "MACs")
    from cnncalc.compare import compare
    from cnncalc.render import ratio_text

    assert macs[-1] == ratio_text(compare(analyses).ratios("macs")[1])
    click(browser, '.comparison tr.match[data-path="inception.b3"]', None)
    for k in (0, 1):
        selected = js(browser, "return document.querySelectorAll('section.view')[arguments[0]]"
                               ".querySelector('.details h2').textContent", k)
        assert selected == "inception.b3"


# --------------------------------------------------------------------------------------------
# Layout: no node over another, no edge through a node (default depth and every layer open)

_GEOMETRY_CHECK = """
var geo = window.cnncalcView.geometry(arguments[0]);
var boxes = geo.nodes, bad = [];
function overlap(a, b) {
  return a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
}
var sorted = boxes.slice().sort(function (a, b) { return a.y - b.y; });
for (var i = 0; i < sorted.length; i++)
  for (var j = i + 1; j < sorted.length && sorted[j].y < sorted[i].y + sorted[i].h; j++)
    if (overlap(sorted[i], sorted[j])) bad.push("overlap " + sorted[i].id + " " + sorted[j].id);
function crosses(p, q, r) {  // does segment p-q pass through the inside of box r (shrunk by 1)?
  var x0 = r.x + 1, x1 = r.x + r.w - 1, y0 = r.y + 1, y1 = r.y + r.h - 1, t0 = 0, t1 = 1;
  var dx = q[0] - p[0], dy = q[1] - p[1];
  var ps = [-dx, dx, -dy, dy], qs = [p[0] - x0, x1 - p[0], p[1] - y0, y1 - p[1]];
  for (var k = 0; k < 4; k++) {
    if (ps[k] === 0) { if (qs[k] < 0) return false; continue; }
    var t = qs[k] / ps[k];
    if (ps[k] < 0) { if (t > t1) return false; if (t > t0) t0 = t; }
    else { if (t < t0) return false; if (t < t1) t1 = t; }
  }
  return t1 - t0 > 1e-6;
}
geo.edges.forEach(function (e) {
  for (var k = 0; k + 1 < e.points.length; k++) {
    var p = e.points[k], q = e.points[k + 1];
    var lo = Math.min(p[1], q[1]), hi = Math.max(p[1], q[1]);
    boxes.forEach(function (b) {
      if (b.id === e.from || b.id === e.to || b.y > hi || b.y + b.h < lo) return;
      if (crosses(p, q, b)) bad.push("edge " + e.from + ">" + e.to + " through " + b.id);
    });
  }
});
return {bad: bad.slice(0, 20), nodes: boxes.length, edges: geo.edges.length};
"""


@pytest.mark.parametrize("spec", ["resnet152", "googlenet", "unet"])
def test_no_node_overlaps_another_and_no_edge_runs_through_a_node(spec, browser, pages):
    path, (analysis,) = pages(spec)
    open_page(browser, path)
    for depth in ("start", None):
        if depth is None:
            depth_button(browser, None)
        result = js(browser, _GEOMETRY_CHECK, 0)
        assert result["bad"] == [], (depth, result)
        assert result["nodes"] > 0 and result["edges"] > 0
    assert console_errors(browser) == []


def test_the_layout_check_finds_an_overlap_and_an_edge_through_a_node(browser, pages):
    path, _ = pages("alexnet")
    open_page(browser, path)
    js(browser, """window.cnncalcView.geometry = function () {
        return {nodes: [{id: "a", x: 0, y: 0, w: 50, h: 20}, {id: "b", x: 40, y: 10, w: 50, h: 20},
                        {id: "c", x: 200, y: 100, w: 50, h: 20}],
                edges: [{from: "a", to: "x", points: [[225, 0], [225, 300]]}]};
    }""")
    assert js(browser, _GEOMETRY_CHECK, 0)["bad"] == ["overlap a b", "edge a>x through c"]
