"""The HTML report: one self-contained file, every string escaped, and in a real browser
(Debian's chromium, headless): no console errors, no network, every chart drawn, a working
trial explorer, and a scenario named like markup shown as text with no script run."""
import os
import re
import shutil
from html import unescape
from pathlib import Path

import pytest

from simulator.catalog import record, save_baseline, snapshot
from simulator.nightly import build_report
from simulator.runs import run_sweep

FIXTURES = Path(__file__).parent / "fixtures"
EVIL = "<img src=x onerror=alert(1)>"
SWEEP = """\
name: evil
seed: {seed}
replicates: 3
scenarios:
  - ref: {scenario}
  - ref: chain
    params: {{length: [2, 8], task: [0, 1]}}
agents: [react]
profiles: [strong, weak]
faults:
  none: []
  "<b>bold</b>": ["server_error:rate=0.2"]
"""
KINDS = {"decay", "passk", "faults", "scenarios", "containment", "flow", "gate", "history"}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    scenario = tmp / "evil.yaml"
    scenario.write_text((FIXTURES / "pipeline10.yaml").read_text().replace("name: pipeline10", f'name: "{EVIL}"'))
    runs = []
    for seed in (1, 2):
        f = tmp / f"s{seed}.yaml"
        f.write_text(SWEEP.format(seed=seed, scenario=scenario))
        runs.append(run_sweep(f, executor="serial", out=tmp / f"run{seed}")[1])
    catalog = tmp / "history.duckdb"
    save_baseline(catalog, "main", snapshot(runs[0], n_boot=100))
    record(catalog, snapshot(runs[1], n_boot=100))
    out = tmp / "report.html"
    out.write_text(build_report(runs[1], baseline="main", catalog=catalog, n_boot=100), encoding="utf-8")
    return out


def test_the_file_is_self_contained_and_escapes_every_string(report):
    html = report.read_text(encoding="utf-8")
    assert EVIL not in html and "<b>bold</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text in markup...
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html  # ...and inert in the explorer's JSON
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1))
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert set(re.findall(r'data-chart="([a-z]+)"', html)) == KINDS
    assert html.count("<script") == 2  # the explorer's data block and its one script
    assert len(html.encode()) < 400_000


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_report_works_in_a_browser(report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    console, requests, dialogs = [], [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: console.append((m.type, m.text)))
        page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        charts = page.evaluate("""() => Array.from(document.querySelectorAll('svg.chart')).map(s => {
            const b = s.getBoundingClientRect();
            return {kind: s.dataset.chart, w: b.width, h: b.height,
                    marks: s.querySelectorAll('circle, polyline, path, rect.node, rect.root').length};
        })""")
        first = page.get_attribute("body", "data-shown-trial")
        options = page.eval_on_selector_all("#trial-pick option", "os => os.map(o => o.textContent)")
        page.select_option("#trial-pick", "1")
        second = page.get_attribute("body", "data-shown-trial")
        lines = page.eval_on_selector_all("#trace li", "ls => ls.map(l => l.textContent)")
        images = page.evaluate("document.querySelectorAll('img').length")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert [c for c in console if c[0] in ("error", "pageerror")] == []
    assert requests == [report.as_uri()]  # the file itself, nothing else
    assert {c["kind"] for c in charts} == KINDS
    assert all(c["w"] > 100 and c["h"] > 50 and c["marks"] > 0 for c in charts), charts
    assert first and second and first != second and len(options) >= 2
    assert lines and lines[0].split()[2] == "trial_start"
    assert any(EVIL in o for o in options)  # the name shows as text...
    assert dialogs == [] and images == 0  # ...and no script ran, no element was made of it
