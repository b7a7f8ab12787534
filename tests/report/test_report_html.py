"""The demo's report: figures on disk, backbone selection, and `snakemake --report` opened in headless Chromium.

Uses the one shared demo run (fixture `demo_run`); nothing here runs the workflow again.
"""

import html
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.support.runner import snakemake
from tileprobe.report.summary import families

pytestmark = pytest.mark.workflow

FIGURES = ["metric_bars", "layer_depth", "roc_pr", "confusion", "reliability", "predicted_vs_true", "kaplan_meier",
           "qc_gallery", "timing", "selection", "embedding_tissue", "embedding_tumor", "embedding_tumor_fraction",
           "embedding_survival", "embedding_stage",
           *(f"tradeoff_{task}" for task in ("tissue", "tumor", "tumor_fraction", "survival", "stage")),
           "heatmaps_tissue"]
CATEGORIES = ["1. Summary", "2. Scores", "3. Predictions", "4. Embeddings", "5. Quality control",
              "6. Backbone selection", "7. Time per stage"]

# Loaded beside a copy of report.html: opens it in an iframe, shows every result the way its eye button does,
# and writes what the browser rendered into <pre id="out"> for --dump-dom to print.
PROBE = """<!DOCTYPE html><html><body><pre id="out">pending</pre>
<iframe id="report" src="report.html" style="width:1400px;height:1000px"></iframe>
<script>
const sleep = ms => new Promise(r => setTimeout(r, ms));
document.getElementById("report").addEventListener("load", async () => {
  const win = document.getElementById("report").contentWindow;
  const out = {menu: "", results: {}, console_errors: []};
  const logError = win.console.error.bind(win.console);
  win.console.error = (...args) => { out.console_errors.push(args.map(String).join(" ")); logError(...args); };
  win.addEventListener("error", ev => out.console_errors.push(String(ev.message)));
  try {
    await sleep(500);
    out.menu = win.document.body.innerText;
    out.categories = win.eval("categories");
    for (const [path, entry] of Object.entries(win.eval("results"))) {
      const png = path.endsWith(".png") || path.endsWith(".jpg");
      win.eval("app").setView({content: png ? "img" : "html", contentPath: entry.data_uri, resultPath: path});
      await sleep(300);
      const img = win.document.querySelector("#app img[src^='data:image/png'], #app img[src^='data:image/jpeg']");
      const frame = win.document.querySelector("#app iframe");
      out.results[path] = {category: entry.category, caption: entry.caption,
                           width: png && img ? img.naturalWidth : null, height: png && img ? img.naturalHeight : null,
                           html: !png && frame ? frame.getAttribute("src").slice(0, 15) : null};
    }
  } catch (err) { out.error = String(err); }
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>
"""


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no chromium on PATH: run .ci/install-browser.sh (make test does) to install Debian's chromium")
    return found


def figure_file(name: str) -> str:
    """A figure's file name: PNG, but for the galleries (QC, heatmaps), a JPEG of thumbnails (issue 17, point 3)."""
    return f"{name}.jpg" if name == "qc_gallery" or name.startswith("heatmaps_") else f"{name}.png"


def test_report_figures_are_written(demo_run):
    figures = demo_run / "results/report/figures"
    assert sorted(p.name for p in figures.iterdir()) == sorted(figure_file(name) for name in FIGURES)
    for name in FIGURES:
        with Image.open(figures / figure_file(name)) as image:
            assert min(image.size) > 200 and np.asarray(image.convert("L")).std() > 5, name
    page = (demo_run / "results/report/summary.html").read_text()
    summary = pd.read_parquet(demo_run / "results/report/summary.parquet")
    tables = len(families(summary))  # a table, with its header row, per kind family
    assert page.count("<table") == tables and page.count("</tr>") == tables + len(summary)


def test_proxy_selection_puts_resnet_above_noise_and_best_uses_it(demo_run):
    results = demo_run / "results"
    selection = pd.read_parquet(results / "selection/tissue.parquet")
    ranks = selection.groupby("backbone")["rank"].agg(["min", "max"])
    assert ranks.loc["resnet18", "min"] == 1  # some resnet18 layer wins
    assert ranks.loc["noise", "min"] == selection["rank"].max()  # noise ranks last, below every resnet18 layer
    assert ranks.loc["noise", "min"] > ranks.loc["resnet18", "max"]
    noise = selection[selection["backbone"] == "noise"]
    assert (noise["score"] < 1 / 3 + 0.2).all()  # three tissue classes: chance is 1/3
    assert (selection["ci_low"] <= selection["score"]).all() and (selection["score"] <= selection["ci_high"]).all()
    # `tumor` has `backbones: best`: its heads were trained on the winner only.
    assert sorted(p.name for p in (results / "heads/tumor").iterdir()) == ["resnet18"]
    agreement = pd.read_parquet(results / "report/selection_agreement.parquet").set_index("task")
    # The proxy's quick ranking agrees with the ranking of the proxy task's own cross-validated heads (noise last
    # in both); `tumor` trained one backbone x layer only, so there is nothing to rank against.
    assert agreement.loc["tissue", "spearman_rho"] >= 0.5
    assert agreement.loc["tumor", "n_candidates"] == 1 and np.isnan(agreement.loc["tumor", "spearman_rho"])


def test_snakemake_report_renders_every_figure_in_headless_chromium(demo_run, tmp_path):
    report = demo_run / "results/report/report.html"
    snakemake(demo_run, "--report", str(report))
    try:
        assert report.stat().st_size > 100_000  # figures are embedded: one self-contained file
        # ...but no per-slide QC picture: the demo's was 22.7 MB with them, about 4.9 MB without (issue 17)
        assert report.stat().st_size < 5_000_000
        shutil.copy(report, tmp_path / "report.html")
    finally:
        report.unlink()  # leave the shared run as it was
    (tmp_path / "probe.html").write_text(PROBE)
    run = subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=60000", "--dump-dom",
         (tmp_path / "probe.html").as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    dom = run.stdout
    seen = json.loads(html.unescape(dom[dom.index('<pre id="out">') + len('<pre id="out">'):dom.index("</pre>")]))
    assert "error" not in seen, seen.get("error")
    # Nothing went wrong: no uncaught error while the page loaded (Chromium logs those), none while every
    # result was shown (the probe listens for them and for console.error).
    uncaught = [line for line in run.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert not uncaught, uncaught
    assert seen["console_errors"] == []
    for category in CATEGORIES:
        assert category in seen["menu"], category
    figures = {path.rsplit("/", 1)[-1].rsplit(".", 1)[0]: info for path, info in seen["results"].items()
               if "/report/figures/" in path}
    assert sorted(figures) == sorted(FIGURES)
    assert sorted(p for p in seen["results"] if "/report/figures/" in p) == sorted(
        f"results/report/figures/{figure_file(name)}" for name in FIGURES)
    # No QC picture is in the report (issue 17, point 3): they stay under results/qc/, and the QC section holds
    # the gallery of their thumbnails alone, which the summary points to them from.
    assert [path for path in seen["results"] if "/qc/" in path] == []
    assert {t: sorted(paths) for t, paths in seen["categories"]["5. Quality control"].items()} == {
        "Other": ["results/report/figures/qc_gallery.jpg"]}
    assert "results/qc/wsi/" in (demo_run / "results/report/summary.html").read_text()
    for name, info in figures.items():
        assert info["width"] > 200 and info["height"] > 100, (name, info)  # decoded and shown by the browser
        assert info["caption"], name
    summary = [info for path, info in seen["results"].items() if path.endswith("summary.html")]
    assert summary and summary[0]["html"].startswith("data:text/html")
