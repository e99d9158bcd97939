"""The seeded sample generator: determinism, ground truth equals the files, realistic shape.

Everything the ground truth claims is recounted here from the written files with polars, without
using the generator's internals.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from clv_pipeline.ingestion.sources import ORGANIC, SOURCES
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.sample_data import GROUND_TRUTH_FILE, generate_sample

DAYS = 40
SCALE = 0.4
SEED = 11
END_DATE = date(2026, 11, 30)
AD_SPEND_KEY = list(SOURCES["ad_spend"].key)
HAS_USER = pl.col("user_id").is_not_null() & (pl.col("user_id") != "")


def _generate(path: Path, seed: int = SEED) -> dict:
    return generate_sample(path, days=DAYS, seed=seed, end_date=END_DATE, scale=SCALE)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    landing = tmp_path_factory.mktemp("sample") / "landing"
    return landing, _generate(landing)


def _file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _files(landing: Path, source: str) -> list[Path]:
    return sorted(p for p in (landing / source).rglob("*") if p.is_file())


def _read(path: Path) -> pl.DataFrame:
    """One landing file as text columns (parquet timestamps rendered as ISO UTC text)."""
    name = path.name
    if name.endswith(".parquet"):
        frame = pl.read_parquet(path)
        return frame.with_columns(
            pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ")).cast(pl.String)
    if name.endswith(".jsonl"):
        return pl.read_ndjson(path).cast(pl.String)
    return pl.read_csv(path, infer_schema=False)  # .csv and .csv.gz


def _read_source(landing: Path, source: str) -> pl.DataFrame:
    """All files of a source with `_folder` (delivery date) and `_file` columns."""
    frames = [
        _read(p).with_columns(pl.lit(p.parent.name).alias("_folder"), pl.lit(str(p)).alias("_file"))
        for p in _files(landing, source)
    ]
    return pl.concat(frames, how="vertical")


@pytest.fixture(scope="module")
def tables(sample) -> dict[str, pl.DataFrame]:
    landing, _ = sample
    return {source: _read_source(landing, source) for source in SOURCES}


def _event_date(column: str) -> pl.Expr:
    return pl.col(column).str.slice(0, 10).str.to_date("%Y-%m-%d")


# ----------------------------------------------------------------------------------------------
# determinism and landing-folder safety


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(sample, tmp_path):
    landing, _ = sample
    again = tmp_path / "again"
    _generate(again)
    assert _file_digests(again) == _file_digests(landing)

    other = tmp_path / "other"
    _generate(other, seed=SEED + 1)
    other_digests = _file_digests(other)
    assert other_digests != _file_digests(landing)
    changed = [name for name, digest in _file_digests(landing).items() if other_digests.get(name) != digest]
    assert any(name.startswith("purchases/") for name in changed)
    assert any(name.startswith("installs/") for name in changed)


def test_refuses_a_non_empty_folder_without_ground_truth(tmp_path):
    (tmp_path / "installs" / "2026-01-02").mkdir(parents=True)
    (tmp_path / "installs" / "2026-01-02" / "real.csv").write_text("user_id,install_time\n")
    with pytest.raises(ValueError, match="ground_truth.json"):
        _generate(tmp_path)
    assert (tmp_path / "installs" / "2026-01-02" / "real.csv").exists()


def test_regeneration_replaces_the_previous_sample(tmp_path):
    landing = tmp_path / "landing"
    generate_sample(landing, days=20, seed=1, end_date=END_DATE, scale=0.1)
    generate_sample(landing, days=15, seed=2, end_date=date(2026, 6, 30), scale=0.1)
    folders = sorted(p.name for p in (landing / "installs").iterdir())
    assert folders[0] == "2026-06-17" and folders[-1] == "2026-07-01"
    truth = json.loads((landing / GROUND_TRUTH_FILE).read_text())
    assert truth["seed"] == 2 and truth["days"] == 15


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="days"):
        generate_sample(tmp_path / "a", days=3)
    with pytest.raises(ValueError, match="scale"):
        generate_sample(tmp_path / "b", days=20, scale=0)


# ----------------------------------------------------------------------------------------------
# layout and formats


def test_layout_formats_and_canonical_columns(sample, tables):
    landing, truth = sample
    suffix = {"installs": ".csv", "purchases": ".csv.gz", "sessions": ".parquet", "ad_spend": ".csv",
              "fx_rates": ".jsonl"}
    first = END_DATE - timedelta(days=DAYS - 1)
    for source, ending in suffix.items():
        paths = _files(landing, source)
        assert paths and all(p.name.endswith(ending) for p in paths), source
        folders = sorted({p.parent.name for p in paths})
        assert folders[0] == (first + timedelta(days=1)).isoformat()
        assert folders[-1] == (END_DATE + timedelta(days=1)).isoformat() == truth["last_delivery_date"]
        columns = [c for c in tables[source].columns if not c.startswith("_")]
        assert columns == [c for c in SOURCES[source].column_names if c in columns], source
        assert set(SOURCES[source].required_columns) <= set(columns), source
    header = _files(landing, "installs")[0].read_bytes().split(b"\n", 1)[0]
    assert header == b"user_id,install_time,app_id,platform,media_source,campaign,country"
    assert b"\r" not in _files(landing, "installs")[0].read_bytes()
    times = pl.concat([tables["installs"]["install_time"], tables["purchases"]["event_time"],
                       tables["sessions"]["session_time"]])
    assert times.str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()


def test_events_are_delivered_the_next_day_except_late_rows(sample, tables):
    _, truth = sample
    installs = tables["installs"]
    assert (installs.select((_event_date("install_time") + pl.duration(days=1)).cast(pl.String) == pl.col("_folder"))
            .to_series().all())
    late_dates = set(truth["dirt"]["late_event_dates"])
    for source, column in (("purchases", "event_time"), ("sessions", "session_time")):
        frame = tables[source].with_columns(
            (pl.col("_folder").str.to_date() - _event_date(column)).dt.total_days().alias("lag"))
        assert set(frame["lag"].unique()) == {1, 1 + truth["dirt"]["late_delay_days"]}, source
        late = frame.filter(pl.col("lag") != 1)
        assert set(late[column].str.slice(0, 10).unique()) <= late_dates, source
        assert late.height == truth["sources"][source]["late_rows"] > 0, source


# ----------------------------------------------------------------------------------------------
# ground truth == files


def test_row_counts_and_dirt_counts_match_the_files(sample, tables):
    _, truth = sample
    for source, frame in tables.items():
        counts = truth["sources"][source]
        assert counts["rows_written"] == frame.height, source
        assert counts["files"] == frame["_file"].n_unique(), source
        content = [c for c in frame.columns if c != "_folder"]
        duplicates = frame.height - frame.select(content).unique().height  # identical rows of one file
        assert counts["exact_duplicate_rows"] == duplicates, source
        if "user_id" in frame.columns:
            null_users = frame.filter(pl.col("user_id").is_null() | (pl.col("user_id") == "")).height
            assert counts["null_user_id_rows"] == null_users, source
    assert truth["sources"]["purchases"]["exact_duplicate_rows"] > 0
    assert truth["sources"]["sessions"]["exact_duplicate_rows"] > 0
    assert truth["sources"]["installs"]["null_user_id_rows"] > 0
    assert truth["sources"]["purchases"]["null_user_id_rows"] > 0


def test_expected_clean_rows_are_the_unique_keys(sample, tables):
    _, truth = sample
    valid = {s: f.filter(HAS_USER) if "user_id" in f.columns else f
             for s, f in tables.items()}
    installs = valid["installs"]
    assert installs.select("app_id", "user_id").unique().height == installs.height
    assert truth["sources"]["installs"]["expected_clean_rows"] == installs.height == truth["totals"]["installs"]

    purchases = valid["purchases"].drop("_file", "_folder").unique()
    hash_key = pl.concat_str(["user_id", "event_time", "product_id", "revenue", "currency"], separator="|")
    keys = purchases.select(pl.when(pl.col("event_id").is_null() | (pl.col("event_id") == ""))
                            .then(pl.lit("hash:") + hash_key).otherwise(pl.col("event_id"))).to_series()
    assert keys.n_unique() == purchases.height == truth["sources"]["purchases"]["expected_clean_rows"]
    empty_ids = tables["purchases"].filter(pl.col("event_id").is_null() | (pl.col("event_id") == "")).height
    assert empty_ids == truth["dirt"]["empty_event_id_rows"]
    assert 0.02 < empty_ids / tables["purchases"].height < 0.08

    sessions = valid["sessions"].select(SOURCES["sessions"].column_names).unique()
    assert sessions.height == truth["sources"]["sessions"]["expected_clean_rows"]

    spend = tables["ad_spend"]
    spend_keys = spend.select(AD_SPEND_KEY).unique().height
    assert spend.height - spend_keys == truth["sources"]["ad_spend"]["restated_keys"] > 0
    assert spend_keys == truth["sources"]["ad_spend"]["expected_clean_rows"]
    restated = spend.filter(pl.struct(AD_SPEND_KEY).is_duplicated())
    assert (restated.group_by(AD_SPEND_KEY).agg(pl.col("_folder").n_unique())["_folder"] == 2).all()

    fx = tables["fx_rates"]
    assert fx.select("date", "currency").unique().height == fx.height == truth["sources"]["fx_rates"][
        "expected_clean_rows"]


def _fx(tables) -> pl.DataFrame:
    return tables["fx_rates"].select(pl.col("date"), "currency", pl.col("usd_per_unit").cast(pl.Float64))


def test_revenue_and_spend_totals_match_the_files(sample, tables):
    _, truth = sample
    fx = _fx(tables)
    purchases = (
        tables["purchases"].filter(HAS_USER).drop("_file", "_folder").unique()
        .with_columns(pl.col("event_time").str.slice(0, 10).alias("date"))
        .join(fx, on=["date", "currency"], how="left")
    )
    assert purchases["usd_per_unit"].null_count() == 0
    purchases = purchases.with_columns((pl.col("revenue").cast(pl.Float64) * pl.col("usd_per_unit")).alias("usd"))
    revenue = truth["totals"]["revenue_usd"]
    iap = purchases.filter((pl.col("revenue_type") == "iap") & ~pl.col("revenue").str.starts_with("-"))
    refunds = purchases.filter(pl.col("revenue").str.starts_with("-"))
    ads = purchases.filter(pl.col("revenue_type") == "ad")
    assert iap["usd"].sum() == pytest.approx(revenue["iap_gross"], abs=0.01)
    assert refunds["usd"].sum() == pytest.approx(revenue["refunds"], abs=0.01)
    assert ads["usd"].sum() == pytest.approx(revenue["ad"], abs=0.01)
    assert purchases["usd"].sum() == pytest.approx(revenue["all_events"], abs=0.01)
    assert iap.height == truth["totals"]["iap_purchase_events"]
    assert refunds.height == truth["totals"]["refund_events"] > 0
    assert ads.height == truth["totals"]["ad_revenue_events"] > 0
    assert iap["user_id"].n_unique() == truth["totals"]["payers"]
    # refunds: same product and currency as an earlier purchase of the user, a few days later
    matched = refunds.join(iap, on=["user_id", "product_id", "currency"], suffix="_purchase").filter(
        pl.col("revenue") == "-" + pl.col("revenue_purchase"))
    assert matched["user_id"].n_unique() == refunds["user_id"].n_unique()
    # ad revenue is small USD amounts in the runner app only
    assert set(ads["currency"]) == {"USD"} and set(ads["app_id"]) == {"com.clvdemo.runner"}
    assert ads["usd"].max() < 1.0

    spend = tables["ad_spend"].with_columns(pl.col("_folder").str.to_date().alias("delivery"))
    latest = (spend.sort("delivery").group_by(AD_SPEND_KEY, maintain_order=True).last()
              .join(fx, on=["date", "currency"], how="left"))
    assert latest["usd_per_unit"].null_count() == 0
    spend_usd = (latest["spend"].cast(pl.Float64) * latest["usd_per_unit"]).sum()
    assert spend_usd == pytest.approx(truth["totals"]["spend_usd"], abs=0.01)
    naive_sum = (spend.join(fx, on=["date", "currency"])
                 .select(pl.col("spend").cast(pl.Float64) * pl.col("usd_per_unit")).to_series().sum())
    assert naive_sum > spend_usd + 1  # restatements would be double counted if summed


def test_ad_spend_shape(sample, tables):
    _, truth = sample
    spend = tables["ad_spend"]
    assert ORGANIC not in set(spend["media_source"])
    by_source = spend.group_by("media_source").agg(
        pl.col("currency").unique().sort().alias("currencies"), pl.col("country").null_count().alias("no_country"),
        pl.len().alias("rows"))
    rows = {r["media_source"]: r for r in by_source.iter_rows(named=True)}
    eur, countryless = truth["dirt"]["eur_reporting_media_source"], truth["dirt"]["countryless_media_source"]
    assert rows[eur]["currencies"] == ["EUR"]
    assert rows[countryless]["no_country"] == rows[countryless]["rows"]
    assert all(r["no_country"] == 0 for s, r in rows.items() if s != countryless)
    assert all(r["currencies"] == ["USD"] for s, r in rows.items() if s != eur)
    assert (spend["spend"].cast(pl.Float64) >= 0).all()
    zero_install_rows = spend.filter(pl.col("installs") == "0").select(AD_SPEND_KEY).unique().height
    assert zero_install_rows == truth["dirt"]["zero_install_spend_rows"] > 0
    # spend-reported installs match the MMP installs per paid cell (country-resolved networks)
    installs = tables["installs"].filter(HAS_USER).with_columns(
        pl.col("install_time").str.slice(0, 10).alias("date"))
    cells = installs.group_by("date", "app_id", "media_source", "campaign", "country", "platform").agg(pl.len())
    final = spend.filter(pl.col("country").is_not_null()).unique(AD_SPEND_KEY, keep="last").with_columns(
        pl.col("installs").cast(pl.UInt32))
    joined = final.filter(pl.col("installs") > 0).join(cells, on=AD_SPEND_KEY, how="left")
    assert (joined["installs"] == joined["len"]).all()
    # CPI differs by country: tier-1 markets cost more than emerging ones
    cpi = final.filter(pl.col("currency") == "USD").group_by("country").agg(
        (pl.col("spend").cast(pl.Float64).sum() / pl.col("installs").sum()).alias("cpi"))
    cpi = dict(cpi.iter_rows())
    assert min(cpi["US"], cpi["JP"]) > 3 * max(cpi["IN"], cpi["BR"])


# ----------------------------------------------------------------------------------------------
# realism


def _retention(tables, day_n: int) -> float:
    installs = tables["installs"].filter(HAS_USER).select(
        "user_id", _event_date("install_time").alias("install_date"))
    last_day = END_DATE
    cohort = installs.filter(pl.col("install_date") + pl.duration(days=day_n) <= last_day)
    active = (tables["sessions"].select("user_id", _event_date("session_time").alias("day")).unique()
              .join(cohort, on="user_id")
              .filter((pl.col("day") - pl.col("install_date")).dt.total_days() == day_n))
    return active["user_id"].n_unique() / cohort.height


def test_retention_of_the_sessions_is_in_the_stated_bands(sample, tables):
    _, truth = sample
    bands = {1: (0.30, 0.40), 7: (0.10, 0.15), 30: (0.03, 0.06)}
    for day_n, (low, high) in bands.items():
        measured = _retention(tables, day_n)
        assert low <= measured <= high, (day_n, measured)
        assert measured == pytest.approx(truth["retention"][f"d{day_n}"], abs=1e-6)
    assert _retention(tables, 0) == 1.0  # day 0 always active


def test_purchases_happen_on_days_with_a_session_and_after_install(tables):
    installs = tables["installs"].filter(HAS_USER).select("user_id", "install_time")
    sessions = tables["sessions"].select("user_id", _event_date("session_time").alias("day")).unique()
    iap = tables["purchases"].filter((pl.col("revenue_type") == "iap") & HAS_USER
                                     & ~pl.col("revenue").str.starts_with("-"))
    iap = iap.with_columns(_event_date("event_time").alias("day"))
    assert iap.join(sessions, on=["user_id", "day"], how="anti").height == 0
    with_install = iap.join(installs, on="user_id", how="left")
    assert with_install["install_time"].null_count() == 0
    assert (with_install["event_time"] >= with_install["install_time"]).all()


def test_payers_countries_channels_and_currencies(sample, tables):
    _, truth = sample
    installs = tables["installs"].filter(HAS_USER)
    payers = tables["purchases"].filter((pl.col("revenue_type") == "iap") & HAS_USER
                                        & ~pl.col("revenue").str.starts_with("-"))["user_id"].n_unique()
    assert 0.02 <= payers / installs.height <= 0.05
    assert installs["country"].n_unique() >= 15 and installs["country"].str.contains(r"^[A-Z]{2}$").all()
    sources = set(installs["media_source"])
    assert ORGANIC in sources and 7 <= len(sources) <= 9 and sources == set(truth["media_sources"])
    assert set(installs["app_id"]) == set(truth["apps"]) and len(truth["apps"]) >= 2
    assert set(installs["platform"]) == {"ios", "android"}
    assert set(installs.filter(pl.col("media_source") == "apple_search_ads")["platform"]) == {"ios"}
    paid = installs.filter(pl.col("media_source") != ORGANIC)
    assert paid["campaign"].null_count() == 0 and paid.group_by("media_source").agg(
        pl.col("campaign").n_unique())["campaign"].min() >= 2
    # weekend lift: mean installs on Sat/Sun above Mon-Thu
    per_day = installs.group_by(_event_date("install_time").alias("day")).agg(pl.len()).with_columns(
        pl.col("day").dt.weekday().alias("weekday"))
    weekend = per_day.filter(pl.col("weekday") >= 6)["len"].mean()
    weekdays = per_day.filter(pl.col("weekday") <= 4)["len"].mean()
    assert weekend > weekdays * 1.05

    fx = tables["fx_rates"]
    purchase_currencies = set(tables["purchases"]["currency"])
    assert len(purchase_currencies) >= 8 and purchase_currencies <= set(truth["currencies"])
    purchase_days = set(tables["purchases"]["event_time"].str.slice(0, 10))
    spend_days = set(tables["ad_spend"]["date"])
    rated = set(zip(fx["date"], fx["currency"]))
    for currency in purchase_currencies | {"EUR", "USD"}:
        missing = [d for d in sorted(purchase_days | spend_days) if (d, currency) not in rated]
        assert not missing, (currency, missing[:3])
    assert set(fx.filter(pl.col("currency") == "USD")["usd_per_unit"].cast(pl.Float64)) == {1.0}
    # zero-decimal currencies are written without a fraction
    jpy = tables["purchases"].filter(pl.col("currency").is_in(["JPY", "KRW"]))["revenue"]
    assert jpy.len() > 0 and not jpy.str.contains(r"\.").any()


def test_ground_truth_file_is_pretty_sorted_json_with_the_parameters(sample):
    landing, truth = sample
    text = (landing / GROUND_TRUTH_FILE).read_text()
    assert json.loads(text) == truth
    assert text == json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert set(truth["bg_nbd"]) == {"r", "alpha", "a", "b"}
    assert set(truth["gamma_gamma"]) == {"p", "q", "gamma"}
    assert truth["model_conventions"]["bg_nbd_time_unit"] == "days"
    BetaGeoParams(**truth["bg_nbd"])
    GammaGammaParams(**truth["gamma_gamma"])
    assert truth["seed"] == SEED and truth["days"] == DAYS
    assert truth["start_date"] == (END_DATE - timedelta(days=DAYS - 1)).isoformat()
    assert truth["end_date"] == END_DATE.isoformat()
    assert len(truth["countries"]) >= 15 and len(truth["currencies"]) >= 9
