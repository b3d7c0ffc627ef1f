"""``spikes demo`` runs the demo pipeline: it prints the comparison table of the summaries it wrote, and the
report and table files exist; bad options get a clear error."""
from __future__ import annotations

from spikes.cli import main
from spikes.reports import load_summary


def test_demo_prints_the_comparison_table_of_its_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--stages", "gt", "--no-deploy", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    s = load_summary(out / "gt_wine_quick")
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in table[0].split("|")[1:-1]]
    rows = [dict(zip(header, (c.strip() for c in line.split("|")[1:-1]))) for line in table[1:]]
    assert [(r["run"], r["backend"]) for r in rows] == [(s.label, "torch")]
    assert float(rows[0]["metric"]) == float(f"{s.metric:.4g}")
    assert (out / "comparison.md").read_text().startswith(table[0])
    assert (out / "report.html").stat().st_size > 1000
    assert "Davies" in printed                        # the energy constants' source is cited
    assert "wall time" in printed


def test_demo_rejects_unknown_stages_and_bad_options(tmp_path, capsys):
    assert main(["demo", "--stages", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown stage" in capsys.readouterr().err
    assert main(["demo", "--lava-samples", "0", "--out", str(tmp_path)]) == 2
    assert "--lava-samples" in capsys.readouterr().err
