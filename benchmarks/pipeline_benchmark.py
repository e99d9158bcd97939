"""Benchmark of the whole pipeline on generated samples: wall time per step and peak memory.

    .venv/bin/python benchmarks/pipeline_benchmark.py [--scales 0.5 1 2] [--days 120]

Prints one table per sample size. Each size is generated into a temporary folder and run in a
child process (so peak RSS is the run's own), exactly as `clv run` does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, os, resource, sys, time
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
from pathlib import Path
from clv_pipeline.cli.run import run_pipeline
from clv_pipeline.settings import Settings
root = Path(sys.argv[1])
settings = Settings(landing_dir=root / "landing", warehouse_path=root / "wh.duckdb", serving_dir=root / "serving")
start = time.monotonic()
summary = run_pipeline(settings, stream=open(os.devnull, "w"))
print(json.dumps({
    "success": summary.success,
    "seconds": time.monotonic() - start,
    "steps": summary.step_seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--days", type=int, default=120)
    args = parser.parse_args()
    from clv_pipeline.sample_data import generate_sample

    for scale in args.scales:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            started = time.monotonic()
            truth = generate_sample(root / "landing", days=args.days, scale=scale)
            generated = time.monotonic() - started
            out = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, env={**os.environ})
            if out.returncode != 0:
                print(out.stderr[-3000:])
                raise SystemExit(f"run failed at scale {scale}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows = {s: c["rows_written"] for s, c in truth["sources"].items()}
            print(f"\nscale {scale} · {args.days} days · " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
            print(f"{'step':<34}{'seconds':>10}")
            print(f"{'(generate sample)':<34}{generated:>10.1f}")
            for step, seconds in sorted(result["steps"].items(), key=lambda kv: -kv[1]):
                print(f"{step:<34}{seconds:>10.1f}")
            print(f"{'total clv run':<34}{result['seconds']:>10.1f}")
            print(f"{'peak RSS (MB)':<34}{result['peak_rss_mb']:>10.0f}")
            print(f"{'success':<34}{str(result['success']):>10}")


if __name__ == "__main__":
    main()
