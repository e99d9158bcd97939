"""Dirty copies of real-looking data run end to end: every injected fault is set aside with its
reason, and the good rows produce exactly the marts of the clean data."""

from __future__ import annotations

import json

import polars as pl
import pytest

from clv_pipeline.publication.contract import PUBLISHED_TABLES
from clv_pipeline.sample_data import generate_sample
from clv_pipeline.sample_data.dirt import make_dirty_copy
from clv_pipeline_tests.conftest import needs_intendo, run_on

pytestmark = pytest.mark.slow

MARTS = [t for t in PUBLISHED_TABLES if t != "data_quality"]


def quarantine_by_reason(run) -> dict[str, dict[str, int]]:
    dq = run.table("data_quality")
    out: dict[str, dict[str, int]] = {}
    for source, text in zip(dq["source"].to_list(), dq["quarantine_reasons"].to_list()):
        for reason, n in json.loads(text).items():
            out.setdefault(source, {}).setdefault(reason, 0)
            out[source][reason] += n
    return out


def injected_by_reason(injected: dict) -> dict[str, dict[str, int]]:
    return {s: {r: n for r, n in c.items() if r != "duplicates"} for s, c in injected.items()}


def assert_same_marts(clean, dirty) -> None:
    for name in MARTS:
        assert dirty.table(name).equals(clean.table(name)), f"{name} differs between the clean and the dirty run"


def assert_faults_accounted(clean, dirty, injected) -> None:
    got = quarantine_by_reason(dirty)
    before = quarantine_by_reason(clean)
    for source, reasons in injected_by_reason(injected).items():
        for reason, n in reasons.items():
            assert got.get(source, {}).get(reason, 0) - before.get(source, {}).get(reason, 0) == n, (source, reason)
    dq_clean = clean.table("data_quality").group_by("source").agg(pl.col("rows_read", "rows_duplicate").sum())
    dq_dirty = dirty.table("data_quality").group_by("source").agg(pl.col("rows_read", "rows_duplicate").sum())
    for source, counts in injected.items():
        extra_dupes = dq_dirty.filter(pl.col("source") == source)["rows_duplicate"][0] - dq_clean.filter(pl.col("source") == source)["rows_duplicate"][0]
        assert extra_dupes == counts["duplicates"], source
    assert dirty.table("data_quality")["accounting_ok"].all()


def test_dirty_sample_gives_the_marts_of_the_clean_sample(tmp_path):
    clean_landing = tmp_path / "clean"
    generate_sample(clean_landing, days=30, scale=0.1, seed=5)
    injected = make_dirty_copy(clean_landing, tmp_path / "dirty", seed=3)
    assert set(injected) == {"installs", "purchases", "sessions", "ad_spend", "fx_rates"}
    assert sum(n for c in injected.values() for r, n in c.items() if r != "duplicates") >= 100
    clean = run_on(clean_landing, tmp_path / "clean_run")
    dirty = run_on(tmp_path / "dirty", tmp_path / "dirty_run")
    assert_faults_accounted(clean, dirty, injected)
    assert_same_marts(clean, dirty)
    # the run summary reports the quarantine counts
    from clv_pipeline.cli.report import run_report

    text = run_report(dirty.summary, dirty.settings)
    assert "Quarantine reasons:" in text and "purchase_before_install" in text and "id_in_scientific_notation" in text


@needs_intendo
def test_faulty_intendo_gives_the_marts_of_the_clean_intendo(intendo_run, tmp_path):
    """The intendo package's faulty tables have duplicates, empty rows, missing ids, wrong years and
    inconsistent country / channel spellings (PRODUCT.md §7): a copy with faults of those kinds."""
    injected = make_dirty_copy(intendo_run.settings.landing_dir, tmp_path / "landing", seed=7, folder_share=0.15)
    dirty = run_on(tmp_path / "landing", tmp_path)
    assert_faults_accounted(intendo_run, dirty, injected)
    assert_same_marts(intendo_run, dirty)
