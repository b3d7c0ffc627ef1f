"""``spikes data info`` on a real recording and on a geometry-less header."""
from __future__ import annotations

from spikes.cli import main


def test_data_info(shared_events, capsys):
    path = shared_events / "prophesee_evt2/expelliarmus_evt2_sample.raw"
    assert main(["data", "info", str(path), "--sensor-size", "640", "480"]) == 0
    out = capsys.readouterr().out
    assert "539481 events" in out and "t 1317888 to 1367888 us" in out and "ON 367855" in out
    assert main(["data", "info", str(path)]) == 1
    assert "no geometry line; pass sensor_size" in capsys.readouterr().out
