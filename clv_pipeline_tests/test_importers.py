"""Importers of the real data sets (PRODUCT.md §7) into the landing layout, and the country table.

The data lives in `../shared/data` next to the repository (override with CLV_SHARED_DATA); tests
that need it are skipped when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from clv_pipeline.ingestion.countries import COUNTRY_NAME_TO_ISO2, ISO2_CODES, to_iso2
from clv_pipeline.ingestion.importers import import_cdnow, import_intendo
from clv_pipeline.ingestion.importers.intendo import platform_from_device
from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline_tests.conftest import INTENDO_DIR, SHARED_DATA, needs_cdnow, needs_intendo


CDNOW_DIR = SHARED_DATA / "cdnow"


def _read_landing(landing: Path, source: str) -> pl.DataFrame:
    """Every CSV of a source as text, with its delivery folder in `_folder`."""
    paths = sorted((landing / source).glob("*/*.csv"))
    assert paths, f"no {source} files in {landing}"
    return pl.concat([
        pl.read_csv(p, infer_schema=False).with_columns(pl.lit(p.parent.name).alias("_folder")) for p in paths
    ])


def _delivery_is_event_date_plus_one(frame: pl.DataFrame, column: str) -> bool:
    expected = (pl.col(column).str.slice(0, 10).str.to_date() + pl.duration(days=1)).cast(pl.String)
    return frame.select(expected == pl.col("_folder")).to_series().all()


# ----------------------------------------------------------------------------------------------
# intendo


@pytest.fixture(scope="module")
def intendo(tmp_path_factory) -> tuple[Path, dict]:
    if not (INTENDO_DIR / "user_summary.csv").is_file():
        pytest.skip(f"intendo data not found in {INTENDO_DIR} (set CLV_SHARED_DATA to the shared data folder)")
    landing = tmp_path_factory.mktemp("intendo") / "landing"
    return landing, import_intendo(INTENDO_DIR, landing)


@needs_intendo
def test_intendo_row_counts_equal_the_source_files(intendo):
    landing, summary = intendo
    expected = {"installs": 1_231, "purchases": 195_917, "sessions": 61_465}
    assert summary["rows"] == expected
    source_rows = {
        "installs": pl.read_csv(INTENDO_DIR / "user_summary.csv", infer_schema=False).height,
        "purchases": pl.read_csv(INTENDO_DIR / "all_revenue.csv", infer_schema=False).height,
        "sessions": pl.read_csv(INTENDO_DIR / "all_sessions.csv", infer_schema=False).height,
    }
    assert source_rows == expected
    for source, rows in expected.items():
        frame = _read_landing(landing, source)
        assert frame.height == rows, source
        columns = [c for c in frame.columns if c != "_folder"]
        assert columns == [c for c in SOURCES[source].column_names if c in columns], source
    assert not (landing / "ad_spend").exists()


@needs_intendo
def test_intendo_installs_are_mapped(intendo):
    landing, _ = intendo
    installs = _read_landing(landing, "installs")
    assert installs["country"].null_count() == 0
    assert set(installs["country"]) <= ISO2_CODES
    assert {"US", "JP", "KR", "HK", "DE"} <= set(installs["country"])
    assert set(installs["platform"]) == {"ios", "android"}
    assert set(installs["media_source"]) == {"organic", "google", "facebook", "apple", "other_campaign", "crosspromo"}
    assert installs["campaign"].null_count() == installs.height
    assert set(installs["app_id"]) == {"super_jetroid"}
    assert installs["user_id"].n_unique() == installs.height
    assert _delivery_is_event_date_plus_one(installs, "install_time")
    source = pl.read_csv(INTENDO_DIR / "user_summary.csv", infer_schema=False)
    unmapped = [name for name in source["country"].unique().to_list() if to_iso2(name) is None]
    assert unmapped == []


@needs_intendo
def test_intendo_rows_round_trip(intendo):
    landing, _ = intendo
    installs = _read_landing(landing, "installs")
    player = installs.filter(pl.col("user_id") == "SBPFOHCVMNQI568").row(0, named=True)
    assert player == {
        "user_id": "SBPFOHCVMNQI568", "install_time": "2015-01-01T10:13:16Z", "app_id": "super_jetroid",
        "platform": "android", "media_source": "apple", "campaign": None, "country": "JP", "_folder": "2015-01-02",
    }
    # a purchase row: revenue text kept exactly as in the source
    purchase_file = landing / "purchases" / "2015-01-02" / "intendo.csv"
    lines = purchase_file.read_text().splitlines()
    assert lines[0] == "user_id,event_time,revenue,currency,product_id,revenue_type,app_id"
    assert "YMKOHGVFZWLJ836,2015-01-01T01:56:51Z,13.992999999999999,USD,gold4,iap,super_jetroid" in lines
    # every source revenue value appears unchanged, in the same multiset
    source = pl.read_csv(INTENDO_DIR / "all_revenue.csv", infer_schema=False)
    purchases = _read_landing(landing, "purchases")
    assert sorted(purchases["revenue"].to_list()) == sorted(source["item_revenue"].to_list())
    assert set(purchases["revenue_type"]) == {"iap", "ad"}
    assert set(purchases["currency"]) == {"USD"}
    assert "event_id" not in purchases.columns
    assert _delivery_is_event_date_plus_one(purchases, "event_time")
    # identical source rows stay exact duplicates (16 pairs) so the pipeline can drop them
    assert purchases.drop("_folder").is_duplicated().sum() == 32
    sessions = _read_landing(landing, "sessions")
    first = sessions.filter(pl.col("session_id") == "YMKOHGVFZWLJ836-pfg3b48e").row(0, named=True)
    assert first == {"user_id": "YMKOHGVFZWLJ836", "session_time": "2015-01-01T11:01:32Z",
                     "session_id": "YMKOHGVFZWLJ836-pfg3b48e", "app_id": "super_jetroid", "_folder": "2015-01-02"}
    assert _delivery_is_event_date_plus_one(sessions, "session_time")


def _write_tiny_intendo(folder: Path, country: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "user_summary.csv").write_text(
        "player_id,first_login,start_day,country,acquisition,device_name\n"
        f"P1,2015-03-01T10:00:00.000000,2015-03-01,\"{country}\",Facebook,iPhone 6\n"
        "P2,2015-03-02T11:00:00.500000,2015-03-02,United States,,Nokia Lumia\n")
    (folder / "all_revenue.csv").write_text(
        "player_id,session_id,session_start,time,item_type,item_name,item_revenue,session_duration,start_day,"
        "acquisition,country\n"
        "P1,P1-a,2015-03-01T10:00:00.000000,2015-03-01T23:59:59.000000,iap,gems1,0.99,3.0,2015-03-01,facebook,X\n")
    (folder / "all_sessions.csv").write_text(
        "player_id,session_id,session_start,session_duration,n_iap,n_ads,rev_iap,rev_ads,rev_all\n"
        "P1,P1-a,2015-03-01T10:00:00.000000,3.0,1,0,0.99,0,0.99\n")
    return folder


def test_intendo_unknown_country_fails_naming_file_and_value(tmp_path):
    source = _write_tiny_intendo(tmp_path / "src", "Atlantis")
    with pytest.raises(ValueError, match=r"user_summary\.csv.*'Atlantis'"):
        import_intendo(source, tmp_path / "landing")


def test_intendo_small_file_mapping(tmp_path):
    source = _write_tiny_intendo(tmp_path / "src", "Korea, Republic of")
    summary = import_intendo(source, tmp_path / "landing")
    assert summary["rows"] == {"installs": 2, "purchases": 1, "sessions": 1}
    installs = _read_landing(tmp_path / "landing", "installs").sort("user_id")
    assert installs.select("user_id", "install_time", "platform", "media_source", "country").rows() == [
        ("P1", "2015-03-01T10:00:00Z", "ios", "facebook", "KR"),
        ("P2", "2015-03-02T11:00:00.5Z", "android", "organic", "US"),
    ]
    purchases = _read_landing(tmp_path / "landing", "purchases")
    assert purchases["_folder"].to_list() == ["2015-03-02"]


def test_platform_from_device_names():
    assert platform_from_device("iPhone 6s Plus") == "ios"
    assert platform_from_device("3rd Gen iPod") == "ios"
    assert platform_from_device("iPad mini") == "ios"
    assert platform_from_device("Samsung Galaxy A7") == "android"
    assert platform_from_device("Sony Experia Z1 Compact") == "android"
    assert platform_from_device("Google Pixel 3") == "android"
    assert platform_from_device("Toaster 3000") == "other"
    assert platform_from_device(None) == "other"


# ----------------------------------------------------------------------------------------------
# CDNOW


@needs_cdnow
def test_cdnow_sample_import(tmp_path):
    landing = tmp_path / "landing"
    summary = import_cdnow(CDNOW_DIR / "CDNOW_sample.txt", landing)
    assert summary["layout"] == "sample"
    assert summary["rows"] == {"installs": 2_357, "purchases": 6_919}
    purchases = _read_landing(landing, "purchases")
    installs = _read_landing(landing, "installs")
    assert purchases.height == 6_919 and installs.height == 2_357
    assert purchases["event_id"].n_unique() == purchases.height
    assert installs["user_id"].n_unique() == installs.height == purchases["user_id"].n_unique()
    # first line of the file: " 00004 0001 19970101  2   29.33"
    first = purchases.filter(pl.col("event_id") == "cdnow-1").row(0, named=True)
    assert first == {"event_id": "cdnow-1", "user_id": "00004", "event_time": "1997-01-01T00:00:00Z",
                     "revenue": "29.33", "currency": "USD", "product_id": "cd", "revenue_type": "iap",
                     "app_id": "cdnow", "_folder": "1997-01-02"}
    customer = installs.filter(pl.col("user_id") == "00004").row(0, named=True)
    assert customer == {"user_id": "00004", "install_time": "1997-01-01T00:00:00Z", "app_id": "cdnow",
                        "platform": "web", "media_source": "organic", "campaign": None, "country": "US",
                        "_folder": "1997-01-02"}
    assert _delivery_is_event_date_plus_one(purchases, "event_time")
    assert _delivery_is_event_date_plus_one(installs, "install_time")
    # the install is each customer's first purchase
    first_purchase = purchases.group_by("user_id").agg(pl.col("event_time").min())
    joined = installs.join(first_purchase, on="user_id")
    assert (joined["install_time"] == joined["event_time"]).all()
    total = purchases["revenue"].cast(pl.Float64).sum()
    source_total = sum(float(line.split()[-1]) for line in (CDNOW_DIR / "CDNOW_sample.txt").read_text().splitlines()
                       if line.strip())
    assert total == pytest.approx(source_total, abs=1e-6)


@needs_cdnow
def test_cdnow_master_import(tmp_path):
    summary = import_cdnow(CDNOW_DIR / "CDNOW_master.txt", tmp_path / "landing")
    assert summary["layout"] == "master"
    assert summary["rows"] == {"installs": 23_570, "purchases": 69_659}
    purchases = _read_landing(tmp_path / "landing", "purchases")
    # line 1 is the header, so the first purchase is line 2: " 00001 19970101  1   11.77"
    first = purchases.filter(pl.col("event_id") == "cdnow-2").row(0, named=True)
    assert (first["user_id"], first["event_time"], first["revenue"]) == ("00001", "1997-01-01T00:00:00Z", "11.77")


def test_cdnow_rejects_other_layouts(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("00001 19970101 1\n")
    with pytest.raises(ValueError, match="4 \\(master\\) or 5 \\(sample\\)"):
        import_cdnow(bad, tmp_path / "landing")
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("00001 19970101 1 11.77\n00002 0001 19970101 1 11.77\n")
    with pytest.raises(ValueError, match="mixed.txt:2"):
        import_cdnow(mixed, tmp_path / "landing")


# ----------------------------------------------------------------------------------------------
# country table


def test_country_names_and_variants():
    cases = {
        "United States": "US", "United States of America": "US", "USA": "US", "u.s.a.": "US",
        "UK": "GB", "United Kingdom": "GB", "Great Britain": "GB", "South Korea": "KR",
        "Korea, Republic of": "KR", "North Korea": "KP", "Russia": "RU", "Russian Federation": "RU",
        "Hong Kong": "HK", "hong kong sar": "HK", "Côte d'Ivoire": "CI", "Ivory Coast": "CI",
        "Viet Nam": "VN", "Czech Republic": "CZ", "Türkiye": "TR", "  the netherlands ": "NL",
        "Bosnia & Herzegovina": "BA", "us": "US", "Jp": "JP", "DE": "DE",
    }
    assert {name: to_iso2(name) for name in cases} == cases
    assert to_iso2("Atlantis") is None and to_iso2("") is None and to_iso2(None) is None
    assert to_iso2("XX") is None


def test_country_table_covers_every_iso_code():
    assert len(ISO2_CODES) >= 249
    assert set(COUNTRY_NAME_TO_ISO2.values()) == set(ISO2_CODES)
    assert all(to_iso2(name) == code for name, code in COUNTRY_NAME_TO_ISO2.items())
