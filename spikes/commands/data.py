"""``spikes data``: generate the embedded data sets into the cache, or summarise an event file."""
from __future__ import annotations

import argparse
import time

from spikes.datasets import EventFileError, read_events
from spikes.datasets.digits import digits_events_file
from spikes.datasets.stereo_synth import stereo_depth_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = sub.add_parser("generate", help="generate (or find) the cached embedded sets and print their paths and times")
    g.add_argument("--which", choices=("digits", "stereo", "all"), default="all")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--cache-dir", default=None, help="default: $SPIKES_CACHE or ~/.cache/spikes")
    i = sub.add_parser("info", help="read an event file and print counts, time range, polarity and triggers")
    i.add_argument("path")
    i.add_argument("--sensor-size", type=int, nargs=2, metavar=("W", "H"), default=None)
    i.add_argument("--format", default=None)


def run(args: argparse.Namespace) -> int:
    if args.action == "generate":
        jobs = {"digits": digits_events_file, "stereo": stereo_depth_file}
        for name in (jobs if args.which == "all" else [args.which]):
            t0 = time.perf_counter()
            path = jobs[name](seed=args.seed, cache_dir=args.cache_dir)
            print(f"{name}: {path} ({time.perf_counter() - t0:.1f} s)")
        return 0
    try:
        s = read_events(args.path, sensor_size=args.sensor_size, format=args.format)
    except (EventFileError, FileNotFoundError) as e:
        print(f"error: {e}")
        return 1
    ev = s.events
    print(f"{s.path}: {len(ev)} events, sensor {s.sensor_size[0]}x{s.sensor_size[1]}, "
          f"t {int(ev['t'][0])} to {int(ev['t'][-1])} us ({s.duration_us / 1e6:.3f} s), ON {int(ev['p'].sum())}, "
          f"triggers {len(s.triggers)} ({int(s.triggers['p'].sum())} rising), "
          f"imu {0 if s.imu is None else len(s.imu)}")
    return 0
