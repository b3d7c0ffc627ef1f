"""The HTML report renders in headless Chromium and every embedded plot image decodes (naturalWidth > 0).

A copy of the report gets a small script that, on window load, counts the <img> elements that are
complete with naturalWidth > 0 and writes ``imgs:OK:TOTAL`` into document.title; ``--dump-dom`` prints
the DOM after the load, and the test parses the title. A report with one corrupted image must fail this.
"""
import base64
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from spikes.reports import parse_summary, write_report

CHECK = ("<script>window.addEventListener('load',function(){var a=document.images,ok=0;"
         "for(var k=0;k<a.length;k++){if(a[k].complete&&a[k].naturalWidth>0)ok++;}"
         "document.title='imgs:'+ok+':'+a.length;});</script>")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--dump-dom"]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not on PATH (.ci/run installs it with apt-get)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return exe


def images_loaded(html_path, tmp_path) -> tuple[int, int]:
    """(images decoded, images on the page) as Chromium sees them."""
    page = tmp_path / "check.html"
    page.write_text(html_path.read_text().replace("</body>", CHECK + "</body>"))
    profile = tmp_path / "profile"
    out = subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={profile}", page.as_uri()],
                         capture_output=True, text=True, timeout=90)
    m = re.search(r"<title>imgs:(\d+):(\d+)</title>", out.stdout)
    assert m, f"chromium printed no result title (rc={out.returncode}): {out.stderr[-800:]}"
    return int(m.group(1)), int(m.group(2))


def _runs():
    rng = np.random.default_rng(0)

    def layers(scale):
        return [{"layer": "conv1", "synops": 5000.0 * scale},
                {"layer": "lif1", "firing_rate": 0.05 * scale, "neurons": 64, "steps": 8},
                {"layer": "fc", "synops": 800.0 * scale},
                {"layer": "lif2", "firing_rate": 0.1 * scale, "neurons": 10, "steps": 8}]
    runs = []
    for k, lam in enumerate([0.0, 1e-2]):
        runs.append(parse_summary({
            "model": "conv_snn", "task": "digits", "metric_name": "accuracy", "metric": 0.9 - 0.05 * k,
            "spike_penalty": lam, "label": f"conv lam={lam:g}", "per_layer": layers(1 - 0.4 * k),
            "backends": {"sim": {"metric": 0.9 - 0.05 * k, "per_layer": layers(1 - 0.4 * k)},
                         "lava-fixed": {"metric": 0.88 - 0.05 * k, "per_layer": layers(0.95 - 0.4 * k)}},
            "raster": {"layer": "lif1", "steps": 8, "neurons": 64, "t": rng.integers(0, 8, 40).tolist(),
                       "i": rng.integers(0, 64, 40).tolist()},
            "neuron_rates": {"lif1": rng.random(64).tolist()}}))
    runs.append(parse_summary({"model": "gt", "task": "iris", "metric_name": "accuracy", "metric": 0.95,
                               "per_layer": layers(0.2)}))
    return runs


@pytest.mark.slow
def test_report_images_load_in_chromium(tmp_path):
    report = write_report(tmp_path / "report.html", _runs())
    text = report.read_text()
    n_img = text.count("<img ")
    # metric-vs-rate, torch-vs-chip, 2 x (raster + histograms), 1 x bar chart
    assert n_img == 7 and "lava-fixed" in text and "Davies" in text
    assert not list(tmp_path.glob(".report.html.*"))          # atomic write left no temp file
    assert images_loaded(report, tmp_path) == (n_img, n_img)

    # negative case: one image's PNG bytes corrupted -> Chromium cannot decode it -> the check fails
    first = re.search(r"base64,([A-Za-z0-9+/=]+)", text)
    raw = bytearray(base64.b64decode(first.group(1)))
    raw[8:40] = b"\x00" * 32                                    # destroy the IHDR chunk
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace(first.group(1), base64.b64encode(bytes(raw)).decode(), 1))
    ok, total = images_loaded(broken, tmp_path)
    assert total == n_img and ok == n_img - 1
