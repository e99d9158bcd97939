"""Reading landing files and turning them into validated raw rows: formats, file-level errors
that name the file, and row-level quarantine with reason codes."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from clv_pipeline.ingestion.landing import LandingFileError, discover_partition_keys, invalid_partition_folders, read_landing_file
from clv_pipeline.ingestion.load import load_deliveries
from clv_pipeline.ingestion.sources import SOURCES

PURCHASES = SOURCES["purchases"]
HEADER = "user_id,event_time,revenue,currency,product_id"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode() if isinstance(text, str) else text))
    elif isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("p.csv", f"{HEADER}\nu1,2024-01-01T10:00:00Z,1.99,USD,gems\n"),
        ("p.csv.gz", f"{HEADER}\nu1,2024-01-01T10:00:00Z,1.99,USD,gems\n"),
        ("p.csv", f"\ufeff{HEADER}\r\nu1,2024-01-01T10:00:00Z,1.99,USD,gems\r\n"),
        ("p.csv", "user_id;event_time;revenue;currency;product_id\nu1;2024-01-01T10:00:00Z;1.99;USD;gems\n"),
        ("p.csv", f'{HEADER}\n"u1","2024-01-01T10:00:00Z","1.99","USD","gems"\n'),
        ("p.jsonl", json.dumps({"user_id": "u1", "event_time": "2024-01-01T10:00:00Z", "revenue": 1.99, "currency": "USD", "product_id": "gems"}) + "\n"),
        ("p.csv", "USER_ID,Event_Time,REVENUE,currency,product_id\nu1,2024-01-01T10:00:00Z,1.99,USD,gems\n"),
    ],
)
def test_formats_read_to_the_same_row(tmp_path, name, content):
    frame = read_landing_file(write(tmp_path / name, content), PURCHASES)
    row = frame.select(PURCHASES.column_names).to_dicts()[0]
    assert row["user_id"] == "u1" and row["revenue"] == "1.99" and row["currency"] == "USD" and row["product_id"] == "gems"
    assert frame["_line_number"].to_list() == [2 if not name.endswith(".jsonl") else 1]


def test_parquet_is_read_with_typed_columns_as_text(tmp_path):
    path = tmp_path / "p.parquet"
    pl.DataFrame({"user_id": ["u1"], "event_time": [datetime(2024, 1, 1, 10)], "revenue": [1.5], "currency": ["USD"]}).write_parquet(path)
    frame = read_landing_file(path, PURCHASES)
    assert frame["revenue"][0] == "1.5"
    assert frame["event_time"][0].startswith("2024-01-01")


def test_extra_columns_are_kept_as_json(tmp_path):
    frame = read_landing_file(write(tmp_path / "p.csv", f"{HEADER},af_channel\nu1,2024-01-01T10:00:00Z,1,USD,g,feed\n"), PURCHASES)
    assert json.loads(frame["_extra"][0]) == {"af_channel": "feed"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.csv", "", "file is empty"),
        ("p.csv", "user_id,revenue,currency\nu1,1,USD\n", "missing required column(s) ['event_time']"),
        ("p.csv", b"user_id,event_time,revenue,currency\nu\xe9,2024-01-01,1,USD\n", "not valid UTF-8"),
        ("p.csv.gz", b"not gzip at all", "not a readable gzip file"),
        ("p.parquet", b"PAR1 broken", "not a readable Parquet file"),
        ("p.csv", "user_id,user_id,event_time,revenue,currency\n", "appears twice in the header"),
    ],
)
def test_file_level_problems_name_the_file_and_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    if name.endswith(".gz") and isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write(path, content)
    with pytest.raises(LandingFileError) as info:
        read_landing_file(path, PURCHASES)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_a_bad_file_fails_its_partition_and_other_partitions_load(tmp_path):
    landing = tmp_path / "landing"
    write(landing / "purchases" / "2024-01-02" / "a.csv", f"{HEADER}\nu1,2024-01-01T10:00:00Z,1.99,USD,gems\n")
    write(landing / "purchases" / "2024-01-03" / "a.csv", "user_id,revenue\nu1,2\n")
    write(landing / "purchases" / "not-a-date" / "a.csv", f"{HEADER}\n")
    assert discover_partition_keys(landing) == ["2024-01-02", "2024-01-03"]
    assert [p.name for p in invalid_partition_folders(landing)] == ["not-a-date"]
    batch = load_deliveries(landing, "purchases", ["2024-01-02", "2024-01-03"])
    assert batch.loaded_partitions == ["2024-01-02"]
    assert len(batch.failures) == 1
    failure = batch.failures[0]
    assert failure.partition == "2024-01-03" and "purchases/2024-01-03/a.csv" in failure.message
    assert "missing required column" in failure.message
    assert batch.rows.height == 1


def test_row_problems_are_quarantined_with_reasons(tmp_path):
    landing = tmp_path / "landing"
    lines = [
        "u1,2024-01-01T10:00:00Z,1.99,usd,gems",  # fine (currency case-folded)
        "u1,2024-01-01T10:00:00Z,1.99,usd,gems",  # exact duplicate in the same delivery
        ",2024-01-01T10:00:00Z,1.99,USD,gems",  # missing user
        "u2,01/02/2024 10:00,1.99,USD,gems",  # M/D/YYYY: never guessed
        "u3,2024-01-01T10:00:00Z,abc,USD,gems",  # not a number
        "u4,2031-01-01T10:00:00Z,2,EUR,gems",  # far future
        "u5,2024-01-01T10:00:00Z,2,EURO,gems",  # not ISO-4217
        "",  # blank line
        "u6,2024-01-01T10:00:00Z,2",  # truncated line
        "u7,null,2,USD,gems",  # the literal string null
        "u8,2024-01-01T10:00:00+02:00,1.5E+1,USD,gems",  # offset and scientific notation: fine
    ]
    write(landing / "purchases" / "2024-01-02" / "a.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    batch = load_deliveries(landing, "purchases", ["2024-01-02"])
    rows = batch.rows.sort("_line_number")
    reasons = dict(zip(rows["_line_number"].to_list(), rows["_quarantine_reasons"].to_list()))
    assert reasons == {
        2: [],
        3: [],
        4: ["missing_user_id"],
        5: ["invalid_event_time"],
        6: ["invalid_revenue"],
        7: ["timestamp_in_future"],
        8: ["invalid_currency"],
        9: ["empty_row"],
        10: ["wrong_field_count"],
        11: ["missing_event_time"],
        12: [],
    }
    assert rows.filter(pl.col("_line_number") == 3)["_is_exact_duplicate"][0]
    good = rows.filter(pl.col("_line_number") == 12).to_dicts()[0]
    assert good["event_time"] == datetime(2024, 1, 1, 8, 0) and good["revenue"] == Decimal("15.000000")
    assert good["event_id"].startswith("h:")
    assert rows.filter(pl.col("_line_number") == 2)["event_id"][0] == rows.filter(pl.col("_line_number") == 3)["event_id"][0]
    checks = {r.rule.name: r for r in batch.validation.results}
    assert checks["user_id_present"].unexpected_count == 2  # the missing one and the blank line
    assert not checks["event_time_parseable"].success


def test_conflicting_rows_with_one_key_in_one_delivery_are_quarantined(tmp_path):
    landing = tmp_path / "landing"
    write(
        landing / "ad_spend" / "2024-01-02" / "a.csv",
        "date,media_source,campaign,country,spend,currency\n"
        "2024-01-01,net,c,US,10,USD\n"
        "2024-01-01,net,c,US,12,USD\n"
        "2024-01-01,net,c,DE,-1,USD\n",
    )
    rows = load_deliveries(landing, "ad_spend", ["2024-01-02"]).rows.sort("_line_number")
    assert rows["_quarantine_reasons"].to_list() == [["conflicting_duplicate_key"], ["conflicting_duplicate_key"], ["negative_spend"]]


def test_country_names_and_channel_case_are_normalised(tmp_path):
    landing = tmp_path / "landing"
    write(
        landing / "installs" / "2024-01-02" / "a.csv",
        "user_id,install_time,country,media_source,platform\n"
        "u1,2024-01-01T09:00:00Z,United States,Facebook, iOS \n"
        "u2,2024-01-01T09:00:00Z,us,facebook,android\n"
        "u3,2024-01-01T09:00:00Z,Narnia,,android\n",
    )
    rows = load_deliveries(landing, "installs", ["2024-01-02"]).rows.sort("_line_number")
    assert rows["country"].to_list() == ["US", "US", None]
    assert rows["media_source"].to_list() == ["facebook", "facebook", "organic"]
    assert rows["platform"].to_list() == ["ios", "android", "android"]
    assert rows["_quarantine_reasons"].to_list() == [[], [], ["invalid_country"]]


def test_jsonl_blank_and_broken_lines_are_rows_with_reasons(tmp_path):
    landing = tmp_path / "landing"
    good = json.dumps({"date": "2024-01-01", "currency": "EUR", "usd_per_unit": 1.1})
    write(landing / "fx_rates" / "2024-01-02" / "r.jsonl", f"{good}\n\n{{not json\n[1, 2]\n")
    rows = load_deliveries(landing, "fx_rates", ["2024-01-02"]).rows.sort("_line_number")
    assert rows["_line_number"].to_list() == [1, 2, 3, 4]
    assert rows["_quarantine_reasons"].to_list() == [[], ["empty_row"], ["invalid_json"], ["invalid_json"]]
