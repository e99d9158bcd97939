"""A BI tool holding the serving file open while runs publish: the reader never errors, never
blocks the pipeline, and always sees one whole snapshot (every table from the same run)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest

from clv_pipeline.cli.run import run_pipeline
from clv_pipeline.sample_data import generate_sample
from clv_pipeline.settings import Settings

pytestmark = pytest.mark.slow

READER = r"""
import json, sys, time
from pathlib import Path
import duckdb
database, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
reads, errors, snapshots, inconsistent = 0, [], set(), []
while not stop.exists():
    try:
        con = duckdb.connect(str(database), read_only=True)
        try:
            sid, counts = con.execute("SELECT snapshot_id, row_counts FROM _snapshot").fetchall()[0]
            time.sleep(0.05)  # hold the file open a while, as a dashboard would
            for table, rows in json.loads(counts).items():
                seen = con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
                if seen != rows:
                    inconsistent.append([sid, table, rows, seen])
            snapshots.add(sid)
            reads += 1
        finally:
            con.close()
    except Exception as exc:  # any error is a failure of the serving contract
        errors.append(repr(exc))
out.write_text(json.dumps({"reads": reads, "errors": errors, "snapshots": sorted(snapshots), "inconsistent": inconsistent}))
"""


def test_reader_in_a_second_process_sees_whole_snapshots_and_never_blocks_a_run(tmp_path):
    landing = tmp_path / "landing"
    generate_sample(landing, days=20, scale=0.05, seed=9)
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    assert run_pipeline(settings).success
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(settings.serving_db_path), str(stop), str(out)])
    try:
        earlier = settings.replace(observation_end=date(2026, 11, 25))
        for run_settings in (earlier, settings):
            summary = run_pipeline(run_settings)
            assert summary.success, summary.failed_steps
            assert "serving_snapshot" in summary.step_seconds
    finally:
        stop.write_text("")
        reader.wait(timeout=60)
    result = json.loads(out.read_text())
    assert result["errors"] == []
    assert result["inconsistent"] == []
    assert result["reads"] >= 10
    assert len(result["snapshots"]) >= 2  # it saw both runs' snapshots, each whole
