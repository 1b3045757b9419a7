"""The report and its figures laid out for a page: panel grids of at most three columns,
ticks legible at 100 % zoom, base-2 log axes for powers of two, one number format in the
tables, wrapped text; and the page rendered in headless Chromium (a screenshot at
1280 × 2000, and a layout probe at two window widths: nothing overflows the window, figures
keep their natural size when the window allows it).

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it and sets
``ACTHASH_REQUIRE_CHROMIUM=1``, which turns a missing browser into a failure); elsewhere the
rendering test is skipped with the reason, and every other check still runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from acthash._utils.io import write_json  # noqa: E402
from acthash.presentation.phase import phase_chart  # noqa: E402
from acthash.presentation.plots import QUANTITIES, plot_factor  # noqa: E402
from acthash.presentation.report import (  # noqa: E402
    CSS_PX_PER_INCH,
    PAGE_WIDTH_PX,
    build_report,
    fmt_number,
    png_size,
)
from acthash.runs.results import ResultStore  # noqa: E402

MIN_TICK_PX = 10  # on screen, at 100 % zoom
WIDTHS = (2, 8, 32, 128)
EPOCHS = (0, 1, 3)


def _results() -> pd.DataFrame:
    """A width × epoch × seed table: redundancy falls with width and time, accuracies rise,
    so the phase chart has all three regimes and values have many digits."""
    rng = np.random.default_rng(0)
    rows = []
    for i, w in enumerate(WIDTHS):
        for j, e in enumerate(EPOCHS):
            for s in (0, 1):
                red = max(0.0, 1.0 - 0.34 * i - 0.05 * j) if i < 3 else 0.0
                acc = 0.3 + 0.15 * i + 0.05 * j + 0.01 * s
                row = {"dataset": "digits", "width": w, "epoch": e, "seed": s, "k": 9,
                       "n_train": 1437, "weight_decay": 5e-4, "cell": f"w{w}s{s}",
                       "cell_index": 2 * i + s}
                for q, _ in QUANTITIES:
                    base = red if q == "redundancy" else acc
                    row[f"{q}_train"] = min(1.0, base + rng.uniform(0, 1e-3))
                    row[f"{q}_test"] = min(1.0, base + rng.uniform(0, 1e-3))
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep")
    df = _results()
    store = ResultStore(d)
    for cell, rows in df.groupby("cell", sort=False):
        store.write_part(cell, rows.reset_index(drop=True))
    write_json(d / "sweep.json", {"name": "layout", "factor": "width", "hue": "epoch",
                                  "n_cells": 8, "description": "a layout check " * 30,
                                  "base": {"weight_decay": 5e-4}, "grid": {"width": WIDTHS}})
    return build_report(d)


def _tick_fontsizes(fig) -> list[float]:
    return [t.get_fontsize() for ax in fig.axes
            for t in (*ax.get_xticklabels(), *ax.get_yticklabels())]


# ----------------------------------------------------------------------------- figures


def test_factor_figure_is_a_grid_of_at_most_three_columns_sized_for_a_page():
    fig = plot_factor(_results()[lambda d: d["epoch"] == 3], "width")
    fig.canvas.draw()
    x0 = sorted({round(ax.get_position().x0, 3) for ax in fig.axes})
    y0 = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    assert len(fig.axes) == len(QUANTITIES) == 6
    assert (len(x0), len(y0)) == (3, 2)  # 3 columns, 2 rows
    width_in = fig.get_size_inches()[0]
    # shown at its natural size in the page column: one inch is 96 CSS px
    assert width_in * CSS_PX_PER_INCH <= PAGE_WIDTH_PX
    sizes = _tick_fontsizes(fig)
    assert sizes and min(sizes) * CSS_PX_PER_INCH / 72 >= MIN_TICK_PX
    plt.close(fig)


def test_phase_chart_panels_wrap_and_keep_legible_ticks():
    df = pd.concat([_results().assign(weight_decay=wd) for wd in (0.0, 1e-4, 1e-3, 1e-2)])
    fig = phase_chart(df, "width", "epoch")  # one panel per weight decay: 4 panels
    fig.canvas.draw()
    assert len(fig.axes) == 4
    assert len({round(ax.get_position().x0, 3) for ax in fig.axes}) == 3  # 3 columns, 2 rows
    assert fig.get_size_inches()[0] * CSS_PX_PER_INCH <= PAGE_WIDTH_PX
    assert min(_tick_fontsizes(fig)) * CSS_PX_PER_INCH / 72 >= MIN_TICK_PX
    plt.close(fig)


@pytest.mark.parametrize("factor, values, scale, base", [
    ("width", (2, 8, 32, 128), "log", 2),          # widths: powers of two
    ("n_train", (64, 256, 1024, 4096), "log", 2),  # sample sizes: powers of two
    ("n_train", (10, 100, 1000), "log", 10),       # other wide ranges: decades
    ("width", (4, 6), "linear", None),             # narrow: linear
])
def test_power_of_two_factors_get_a_base_2_axis_ticked_at_the_values(factor, values, scale,
                                                                      base):
    df = pd.DataFrame([{factor: v, "seed": s, **{f"{q}_{sp}": 0.5 for q, _ in QUANTITIES
                                                  for sp in ("train", "test")}}
                       for v in values for s in (0, 1)])
    fig = plot_factor(df, factor)
    ax = fig.axes[0]
    assert ax.get_xscale() == scale
    if base is not None:
        assert ax.xaxis.get_transform().base == base
    if base == 2:
        assert list(ax.get_xticks()) == list(values)
        fig.canvas.draw()
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in values]
    plt.close(fig)


# ----------------------------------------------------------------------------- the page


def test_one_number_format():
    assert fmt_number(0.123456) == "0.123"
    assert fmt_number(1.0) == "1.000" and fmt_number(12.5) == "12.500"
    assert fmt_number(1.234e-05) == "0.000"
    assert fmt_number(np.float32(0.5)) == "0.500"
    assert fmt_number(7) == "7" and fmt_number(np.int64(1437)) == "1437"
    assert fmt_number(float("nan")) == "" and fmt_number(None) == ""
    assert fmt_number(5e-4, setting=True) == "0.0005"  # a setting is printed as given
    assert fmt_number(128.0, setting=True) == "128"
    assert fmt_number("digits") == "digits"


def test_png_size_reads_pixels_and_dpi(tmp_path):
    fig = plt.figure(figsize=(4, 2.5))
    fig.savefig(tmp_path / "f.png", dpi=150)
    plt.close(fig)
    assert png_size((tmp_path / "f.png").read_bytes()) == (600, 375, 150.0)


def _images(page: str) -> list[dict]:
    out = []
    for m in re.finditer(r'<img [^>]*width="(\d+)" height="(\d+)" '
                         r'src="data:image/png;base64,([^"]+)"', page):
        import base64

        w, h, dpi = png_size(base64.b64decode(m.group(3)))
        out.append({"css_w": int(m.group(1)), "css_h": int(m.group(2)), "px_w": w, "px_h": h,
                    "dpi": dpi})
    return out


def test_report_page_figures_at_natural_size_and_legible(report):
    page = report.read_text()
    images = _images(page)
    assert len(images) == 3  # vs width, vs epoch, the phase chart
    for im in images:
        assert im["dpi"] >= 100
        # shown at 96 CSS px per inch of the figure, and no wider than the page column
        assert im["css_w"] == round(im["px_w"] * CSS_PX_PER_INCH / im["dpi"])
        assert im["css_w"] <= PAGE_WIDTH_PX
        # a 9-pt tick label (the figures' size, checked above) is then this high on screen
        assert 9 * im["dpi"] / 72 * im["css_w"] / im["px_w"] >= MIN_TICK_PX
    # the strip this replaces: ~2461 px shown 1150 px wide. Now no figure is wider than
    # 3 panels plus margins, and the panel grid makes them taller than a strip
    assert all(im["css_h"] / im["css_w"] > 0.3 for im in images)


def test_report_page_css_wraps_text_and_bounds_images(report):
    page = report.read_text()
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1).replace("\n", "")
    rule = {m.group(1).strip(): m.group(2) for m in re.finditer(r"([^{}]+)\{([^{}]*)\}", css)}
    assert "max-width:100%" in rule["img"] and "height:auto" in rule["img"]
    assert "white-space:pre-wrap" in rule["pre"] and "overflow-wrap:anywhere" in rule["pre"]
    assert "overflow-x:auto" in rule[".table"]  # a wide table scrolls in its box
    assert "flex-wrap:wrap" in rule[".figs"]
    assert re.search(r"max-width:\d+px", rule["body"])


def test_report_tables_use_one_number_format(report):
    page = report.read_text()
    one = re.compile(r"^(-?\d+\.\d{3}( ± \d+\.\d{3})?|-?\d+)$")  # 0.123, 0.123 ± 0.004, 12
    for section in ("Summary (mean ± std over seeds", "Phase classification"):
        start = page.index(section)
        body = page[start:page.index("</table>", start)]
        cells = re.findall(r"<td>([^<]*)</td>", body)  # numeric cells (text cells: class)
        assert cells, section
        bad = [c for c in cells if not one.match(c)]
        assert not bad, (section, bad[:5])
    # the phase table's measured columns are all 3-decimal (no 0.0007 beside 0.6433)
    phase = page[page.index("Phase classification"):]
    row = re.search(r'<tr class="\w+">(.*?)</tr>', phase).group(1)
    values = re.findall(r"<td>([^<]*)</td>", row)
    assert values[:2] == ["2", "0"]  # width and epoch: settings
    assert all(re.fullmatch(r"\d\.\d{3}", v) for v in values[2:6] + values[7:8])


# ----------------------------------------------------------------------------- Chromium

_PROBE = """<script>
window.addEventListener("load", function () {
  var d = document.documentElement, out = {scrollWidth: d.scrollWidth,
    innerWidth: window.innerWidth, images: []};
  [].forEach.call(document.images, function (im) {
    out.images.push({shown: im.getBoundingClientRect().width, natural: im.naturalWidth,
                     right: im.getBoundingClientRect().right});
  });
  var p = document.createElement("pre"); p.id = "acthash-layout";
  p.textContent = JSON.stringify(out); document.body.appendChild(p);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    for path in ("/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if os.path.exists(path):
            return path
    return None


def _run_chromium(exe: str, args: list[str], profile: Path, timeout: float = 180) -> str:
    """Run headless Chromium in a session of its own; kill that session however it ends."""
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--hide-scrollbars", "--no-first-run", f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish in {timeout} s: {' '.join(args)}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # renderer/zygote children, if any are left
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 0, f"chromium exited {proc.returncode}"
    return out.decode("utf-8", "replace")


def test_report_renders_in_headless_chromium(report, tmp_path):
    exe = _chromium()
    if exe is None:
        if os.environ.get("ACTHASH_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required here (ACTHASH_REQUIRE_CHROMIUM=1) but not found")
        pytest.skip("no chromium on this machine: apt-get install chromium (.ci/run does)")
    shot = tmp_path / "report.png"
    _run_chromium(exe, [f"--screenshot={shot}", "--window-size=1280,2000",
                        report.as_uri()], tmp_path / "profile")
    assert png_size(shot.read_bytes())[:2] == (1280, 2000)
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    for width in (1280, 700):
        dom = _run_chromium(exe, [f"--window-size={width},2000", "--virtual-time-budget=10000",
                                  "--dump-dom", probe.as_uri()], tmp_path / "profile")
        m = re.search(r'<pre id="acthash-layout">(.*?)</pre>', dom, re.S)
        assert m, "the layout probe did not run"
        layout = json.loads(m.group(1).replace("&quot;", '"'))
        # nothing is wider than the window: no horizontal scrolling of the page
        assert layout["scrollWidth"] <= layout["innerWidth"], (width, layout)
        assert len(layout["images"]) == 3
        for im in layout["images"]:
            assert im["right"] <= layout["innerWidth"]
        if width == 1280:  # wide enough: every figure at its natural size, ticks >= 10 px
            images = _images(report.read_text())
            for im, shown in zip(images, layout["images"], strict=True):
                assert abs(shown["shown"] - im["css_w"]) <= 1
                assert 9 * im["dpi"] / 72 * shown["shown"] / shown["natural"] >= MIN_TICK_PX
