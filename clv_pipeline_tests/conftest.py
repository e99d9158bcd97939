"""Shared fixtures: where the real data sets are, and whole-pipeline runs reused by many tests.

The real data sets live in `../shared/data` next to the repository (override with the
CLV_SHARED_DATA environment variable). Tests that need them are skipped, with the reason shown in
the pytest summary, when the folder is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from clv_pipeline.cli.run import RunSummary, run_pipeline  # noqa: E402
from clv_pipeline.settings import Settings  # noqa: E402

#: Test modules that share an expensive session fixture (a whole-pipeline run or a generated
#: landing) run on one xdist worker, so the fixture is built once: module file -> group.
#: (xdist's own ``xdist_group`` mark does not work with pytest 9: it rewrites ``item._nodeid``,
#: which pytest 9 no longer reads.)
SHARED_FIXTURE_GROUPS = {
    "test_e2e_sample.py": "sample_run",
    "test_e2e_intendo.py": "intendo_run",
    "test_e2e_dirty.py": "intendo_run",
    "test_e2e_cdnow.py": "cdnow_run",
    "test_ops_backfill.py": "landing60",
    "test_ops_recovery.py": "landing21",
}


def pytest_xdist_make_scheduler(config, log):
    """Under ``pytest -n N``: each SHARED_FIXTURE_GROUPS group is one unit of work (the biggest
    first); every other test is a unit of its own, as with ``--dist load``."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
            return SHARED_FIXTURE_GROUPS.get(module, nodeid)

    return SharedFixtureScheduling(config, log)


def shared_data_dir() -> Path:
    override = os.environ.get("CLV_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


SHARED_DATA = shared_data_dir()
INTENDO_DIR = SHARED_DATA / "intendo"
CDNOW_SAMPLE = SHARED_DATA / "cdnow" / "CDNOW_sample.txt"

needs_intendo = pytest.mark.skipif(
    not (INTENDO_DIR / "user_summary.csv").is_file(),
    reason=f"intendo data not found in {INTENDO_DIR} (set CLV_SHARED_DATA to the shared data folder)",
)
needs_cdnow = pytest.mark.skipif(
    not CDNOW_SAMPLE.is_file(),
    reason=f"CDNOW data not found in {CDNOW_SAMPLE.parent} (set CLV_SHARED_DATA to the shared data folder)",
)


@dataclass
class PipelineRun:
    settings: Settings
    summary: RunSummary
    truth: dict | None = None

    def table(self, name: str) -> pl.DataFrame:
        """A published table, read from the serving database."""
        return serving_table(self.settings.serving_db_path, name)

    def parquet(self, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.settings.parquet_dir / f"{name}.parquet")

    def warehouse_query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
        finally:
            con.close()


def serving_table(path: Path, name: str) -> pl.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return pl.from_arrow(con.sql(f'SELECT * FROM "{name}"').to_arrow_table())
    finally:
        con.close()


def run_on(landing: Path, root: Path, **settings) -> PipelineRun:
    config = Settings(
        landing_dir=landing, warehouse_path=root / "warehouse.duckdb", serving_dir=root / "serving", **settings
    )
    summary = run_pipeline(config)
    assert summary.success, f"pipeline run failed: {summary.failed_steps} {[c for c in summary.checks_failed]}"
    truth_file = landing / "ground_truth.json"
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else None
    return PipelineRun(config, summary, truth)


SAMPLE_DAYS = 120
SAMPLE_SCALE = 1.0
SAMPLE_SEED = 7


@pytest.fixture(scope="session")
def sample_landing(tmp_path_factory) -> Path:
    from clv_pipeline.sample_data import generate_sample

    landing = tmp_path_factory.mktemp("sample") / "landing"
    generate_sample(landing, days=SAMPLE_DAYS, seed=SAMPLE_SEED, scale=SAMPLE_SCALE)
    return landing


@pytest.fixture(scope="session")
def sample_run(sample_landing, tmp_path_factory) -> PipelineRun:
    """The generated sample through the whole pipeline (the README's main job)."""
    return run_on(sample_landing, tmp_path_factory.mktemp("sample_run"))


# Cost per install and a fixed daily fee of the intendo channels we buy (our own fixture: the data
# set has no ad spend); crosspromo is the game's own cross-promotion and has no spend.
INTENDO_CPI = {"apple": "3.10", "facebook": "2.40", "google": "1.90", "other_campaign": "0.80"}
INTENDO_DAILY_FEE = "1.00"


def write_intendo_spend(landing: Path) -> None:
    """ad_spend for intendo's paid channels, one row per (day, channel) of 2015, delivered the next
    day: installs that day × CPI + a daily fee (so days without installs still cost something)."""
    players = pl.read_csv(INTENDO_DIR / "user_summary.csv", infer_schema=False).select(
        pl.col("acquisition").str.to_lowercase().alias("media_source"), pl.col("start_day").str.to_date().alias("date")
    )
    installs = players.group_by("date", "media_source").len()
    days = pl.date_range(date(2015, 1, 1), date(2015, 12, 31), eager=True).alias("date")
    grid = pl.DataFrame(days).join(pl.DataFrame({"media_source": list(INTENDO_CPI)}), how="cross")
    spend = grid.join(installs, on=["date", "media_source"], how="left").with_columns(pl.col("len").fill_null(0))
    spend = spend.with_columns(
        spend=(pl.col("len") * pl.col("media_source").replace_strict(INTENDO_CPI).cast(pl.Float64) + float(INTENDO_DAILY_FEE)).round(2),
        currency=pl.lit("USD"),
    )
    for (day,), rows in spend.group_by("date"):
        folder = landing / "ad_spend" / (day + timedelta(days=1)).isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        rows.select("date", "media_source", pl.col("spend").map_elements(lambda v: f"{v:.2f}", return_dtype=pl.String), "currency").sort(
            "media_source"
        ).write_csv(folder / "spend.csv")


@pytest.fixture(scope="session")
def intendo_run(tmp_path_factory) -> PipelineRun:
    if not (INTENDO_DIR / "user_summary.csv").is_file():
        pytest.skip(f"intendo data not found in {INTENDO_DIR}")
    from clv_pipeline.ingestion.importers import import_intendo

    root = tmp_path_factory.mktemp("intendo")
    import_intendo(INTENDO_DIR, root / "landing")
    write_intendo_spend(root / "landing")
    return run_on(root / "landing", root)


@pytest.fixture(scope="session")
def cdnow_run(tmp_path_factory) -> PipelineRun:
    if not CDNOW_SAMPLE.is_file():
        pytest.skip(f"CDNOW data not found in {CDNOW_SAMPLE.parent}")
    from clv_pipeline.ingestion.importers import import_cdnow

    root = tmp_path_factory.mktemp("cdnow")
    import_cdnow(CDNOW_SAMPLE, root / "landing")
    # CDNOW is a retailer: no app-store fee on its sales
    return run_on(root / "landing", root, observation_end=date(1997, 9, 30), time_unit="weeks", store_fees={"iap": 0.0})


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # a read-write connection holds the file's lock
con.execute("SELECT 1")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_database_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding ``path`` open read-write for ``seconds`` (returns once it holds it)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def log_params(params) -> np.ndarray:
    """ln of every parameter of a model's parameter record, in field order."""
    return np.log(list(params.as_dict().values()))


def standard_errors(gradient, params) -> np.ndarray:
    """Asymptotic standard errors of the log-parameters at ``params``: the square roots of the
    diagonal of the inverse observed information (−Hessian of the log-likelihood, by central
    differences of its analytic ``gradient`` over the log-parameters)."""
    from clv_pipeline.models.fitting import numerical_hessian

    return np.sqrt(np.diag(np.linalg.inv(-numerical_hessian(gradient, log_params(params)))))


def purchase_gradient(module, x, t_x, T):
    """The log-likelihood gradient of a purchase model (bg_nbd, mbg_nbd, pareto_nbd) on (x, t_x, T)."""
    from clv_pipeline.models.fitting import compress_patterns

    (ux, utx, uT), counts, _ = compress_patterns(np.asarray(x, dtype=float), t_x, T)
    return lambda th: module.log_likelihood_and_gradient(th, ux, utx, uT, counts)[1]


def spend_gradient(x, m):
    """The Gamma-Gamma log-likelihood gradient on the repeat buyers among (x, m)."""
    from clv_pipeline.models import gamma_gamma

    ok = np.asarray(x) > 0
    xs, ms = np.asarray(x)[ok].astype(float), np.asarray(m)[ok]
    return lambda th: gamma_gamma.log_likelihood_and_gradient(th, xs, ms, np.ones(len(xs)))[1]
