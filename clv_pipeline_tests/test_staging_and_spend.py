"""Staging rules (dedup by key, restatement, reinstalls, FX, net revenue, orphans) and spend
allocation, on small frames with known answers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest

from clv_pipeline.metrics.spend import allocate_spend
from clv_pipeline.staging.dedup import resolve_keys
from clv_pipeline.staging.tables import attach_fx, build_purchases

LINEAGE = {"_source_file": "f.csv"}


def raw(source_rows: list[dict], partition_of: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame(source_rows)
    return frame.with_columns(
        _delivery_date=pl.Series([date.fromisoformat(p) for p in partition_of]),
        _source_file=pl.lit("f.csv"),
        _line_number=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),
        _quarantined=pl.lit(False),
    )


def spend_rows(**columns) -> dict:
    base = {"date": date(2024, 1, 1), "app_id": None, "media_source": "net", "campaign": None, "country": None, "platform": None}
    base.update(columns)
    return base


def spend_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={
        "date": pl.Date, "app_id": pl.String, "media_source": pl.String, "campaign": pl.String,
        "country": pl.String, "platform": pl.String, "spend_usd": pl.Decimal(38, 6),
    })


def cells(rows: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    """(campaign, country, platform, installs) cells of app 'a', source 'net', 2024-01-01."""
    return pl.DataFrame(
        {
            "cohort_date": [date(2024, 1, 1)] * len(rows),
            "app_id": ["a"] * len(rows),
            "media_source": ["net"] * len(rows),
            "campaign": [r[0] for r in rows],
            "country": [r[1] for r in rows],
            "platform": [r[2] for r in rows],
            "cohort_size": pl.Series([r[3] for r in rows], dtype=pl.Int64),
        }
    )


def test_restated_spend_replaces_the_earlier_delivery_never_sums():
    rows = [
        {"date": date(2024, 1, 1), "app_id": None, "media_source": "net", "campaign": "c", "country": "US", "platform": None,
         "spend": Decimal("100"), "currency": "USD", "impressions": None, "clicks": None, "installs": None},
        {"date": date(2024, 1, 1), "app_id": None, "media_source": "net", "campaign": "c", "country": "US", "platform": None,
         "spend": Decimal("120"), "currency": "USD", "impressions": None, "clicks": None, "installs": None},
        {"date": date(2024, 1, 1), "app_id": None, "media_source": "net", "campaign": "c", "country": "US", "platform": None,
         "spend": Decimal("120"), "currency": "USD", "impressions": None, "clicks": None, "installs": None},
    ]
    resolved = resolve_keys(raw(rows, ["2024-01-02", "2024-01-09", "2024-01-10"]), "ad_spend")
    assert resolved.kept["spend"].to_list() == [Decimal("120")]
    assert resolved.kept["_delivery_date"].to_list() == [date(2024, 1, 9)]  # the identical re-send is a duplicate
    assert resolved.fates["fate"].to_list() == ["replaced", "kept", "duplicate"]


def test_installs_earliest_wins_and_later_rows_are_reinstalls():
    rows = [
        {"user_id": "u", "install_time": datetime(2024, 1, 5), "app_id": "a", "platform": "ios", "media_source": "x",
         "campaign": None, "country": "US", "is_reinstall": False, "cost": None, "cost_currency": None},
        {"user_id": "u", "install_time": datetime(2024, 1, 2), "app_id": "a", "platform": "ios", "media_source": "y",
         "campaign": None, "country": "US", "is_reinstall": False, "cost": None, "cost_currency": None},
        {"user_id": "u", "install_time": datetime(2024, 1, 1), "app_id": "a", "platform": "ios", "media_source": "z",
         "campaign": None, "country": "US", "is_reinstall": True, "cost": None, "cost_currency": None},
    ]
    resolved = resolve_keys(raw(rows, ["2024-01-06", "2024-01-07", "2024-01-08"]), "installs")
    assert resolved.kept["media_source"].to_list() == ["y"]
    assert resolved.kept["reinstalls"].to_list() == [2]
    assert resolved.fates["fate"].to_list() == ["replaced", "kept", "replaced"]


def test_latest_delivery_of_an_event_wins():
    rows = [
        {"event_id": "e1", "user_id": "u", "event_time": datetime(2024, 1, 1, 10), "revenue": Decimal("5"), "currency": "USD",
         "product_id": "p", "revenue_type": "iap", "app_id": "a"},
        {"event_id": "e1", "user_id": "u", "event_time": datetime(2024, 1, 1, 10), "revenue": Decimal("4.5"), "currency": "USD",
         "product_id": "p", "revenue_type": "iap", "app_id": "a"},
    ]
    resolved = resolve_keys(raw(rows, ["2024-01-02", "2024-01-05"]), "purchases")
    assert resolved.kept["revenue"].to_list() == [Decimal("4.5")]


def test_fx_uses_the_rate_of_the_day_or_the_nearest_earlier_one():
    rates = pl.DataFrame({"date": [date(2024, 1, 1), date(2024, 1, 3)], "currency": ["EUR", "EUR"], "usd_per_unit": [1.10, 1.20]})
    events = pl.DataFrame(
        {
            "currency": ["EUR", "EUR", "EUR", "USD", "JPY", "EUR"],
            "d": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 5), date(2024, 1, 2), date(2024, 1, 2), date(2023, 12, 31)],
        }
    )
    got = attach_fx(events, rates, "d")["usd_per_unit"].to_list()
    assert got == [1.10, 1.10, 1.20, 1.0, None, None]  # no JPY rate; nothing before the first EUR rate


def test_purchases_net_revenue_orphans_and_quarantine():
    installs = pl.DataFrame(
        {
            "app_id": ["a", "a"],
            "user_id": ["u1", "u9"],
            "install_time": [datetime(2024, 1, 2, 12), datetime(2024, 1, 1)],
            "install_date": [date(2024, 1, 2), date(2024, 1, 1)],
            "is_new_install": [True, False],  # u9 is known only from a reinstall row
        }
    )
    rates = pl.DataFrame({"date": [date(2024, 1, 1)], "currency": ["EUR"], "usd_per_unit": [1.25]})
    rows = [
        {"event_id": "e1", "user_id": "u1", "event_time": datetime(2024, 1, 3), "revenue": Decimal("10"), "currency": "EUR",
         "product_id": "p", "revenue_type": "iap", "app_id": None},
        {"event_id": "e2", "user_id": "u1", "event_time": datetime(2024, 1, 4), "revenue": Decimal("-10"), "currency": "EUR",
         "product_id": "p", "revenue_type": "iap", "app_id": None},
        {"event_id": "e3", "user_id": "u1", "event_time": datetime(2024, 1, 4), "revenue": Decimal("0.05"), "currency": "USD",
         "product_id": None, "revenue_type": "ad", "app_id": None},
        {"event_id": "e4", "user_id": "u2", "event_time": datetime(2024, 1, 4), "revenue": Decimal("1"), "currency": "USD",
         "product_id": None, "revenue_type": "iap", "app_id": None},
        {"event_id": "e5", "user_id": "u1", "event_time": datetime(2024, 1, 4), "revenue": Decimal("1"), "currency": "GBP",
         "product_id": None, "revenue_type": "iap", "app_id": None},
        {"event_id": "e6", "user_id": "u1", "event_time": datetime(2024, 1, 1, 11), "revenue": Decimal("1"), "currency": "USD",
         "product_id": None, "revenue_type": "iap", "app_id": None},  # 25 h before the install
        {"event_id": "e7", "user_id": "u1", "event_time": datetime(2024, 1, 1, 13), "revenue": Decimal("1"), "currency": "USD",
         "product_id": None, "revenue_type": "iap", "app_id": None},  # 23 h before: allowed
        {"event_id": "e8", "user_id": "u9", "event_time": datetime(2024, 1, 3), "revenue": Decimal("50"), "currency": "USD",
         "product_id": None, "revenue_type": "iap", "app_id": None},  # reinstall-only user: an orphan
    ]
    result = build_purchases(raw(rows, ["2024-01-05"] * len(rows)), installs, rates, {"iap": 0.3, "ad": 0.0}, "UTC", 24)
    table = {r["event_id"]: r for r in result.table.to_dicts()}
    assert table["e1"]["revenue_gross_usd"] == Decimal("12.500000")
    assert table["e1"]["store_fee_usd"] == Decimal("3.750000")
    assert table["e1"]["revenue_net_usd"] == Decimal("8.750000")
    assert table["e2"]["revenue_net_usd"] == Decimal("-8.750000")  # the store returns its fee on a refund
    assert table["e3"]["revenue_net_usd"] == Decimal("0.050000")  # no store fee on ad revenue
    assert table["e1"]["app_id"] == "a"  # filled from the user's install
    assert table["e4"]["is_orphan"] and table["e4"]["app_id"] == "default"
    assert table["e8"]["is_orphan"] and table["e8"]["app_id"] == "a"
    assert not table["e1"]["is_orphan"]
    assert "e7" in table
    quarantined = dict(zip(result.quarantined["_line_number"].to_list(), result.quarantined["reasons"].to_list()))
    assert quarantined == {6: ["no_fx_rate"], 7: ["purchase_before_install"]}


def test_spend_is_allocated_by_installs_and_sums_exactly():
    allocated = allocate_spend(
        spend_frame([spend_rows(spend_usd=Decimal("100.00"), country=None)]),
        cells([("c1", "US", "ios", 1), ("c1", "DE", "ios", 1), ("c2", "US", "android", 1)]),
    )
    assert allocated["spend"].sum() == Decimal("100.000000")
    assert sorted(allocated["spend"].to_list()) == [Decimal("33.333333"), Decimal("33.333333"), Decimal("33.333334")]


def test_spend_matches_only_the_dims_it_names():
    allocated = allocate_spend(
        spend_frame([spend_rows(spend_usd=Decimal("30"), campaign="c1", country="US"), spend_rows(spend_usd=Decimal("10"), campaign="c2")]),
        cells([("c1", "US", "ios", 3), ("c1", "DE", "ios", 1), ("c2", "US", "android", 2), ("c2", "FR", "ios", 2)]),
    )
    got = {(r["campaign"], r["country"]): r["spend"] for r in allocated.to_dicts()}
    assert got == {("c1", "US"): Decimal("30.000000"), ("c2", "US"): Decimal("5.000000"), ("c2", "FR"): Decimal("5.000000")}


def test_spend_without_installs_is_reported_not_dropped():
    allocated = allocate_spend(
        spend_frame([spend_rows(spend_usd=Decimal("7.5"), campaign="ghost", country="BR", platform="ios")]),
        cells([("c1", "US", "ios", 3)]),
    )
    assert allocated.to_dicts() == [
        {"cohort_date": date(2024, 1, 1), "app_id": None, "media_source": "net", "campaign": "ghost", "country": "BR",
         "platform": "ios", "spend": Decimal("7.500000"), "spend_rows": 1}
    ]


@pytest.mark.parametrize("amount", ["0.01", "1", "999999.999999", "12345.678901"])
def test_largest_remainder_allocation_is_exact(amount):
    allocated = allocate_spend(
        spend_frame([spend_rows(spend_usd=Decimal(amount))]),
        cells([(f"c{i}", "US", "ios", i + 1) for i in range(7)]),
    )
    assert allocated["spend"].sum() == Decimal(amount).quantize(Decimal("0.000001"))


def test_reporting_timezone_does_not_change_the_fx_rate():
    """01:13 UTC on 3 Aug is 2 Aug in Los Angeles; the rate file starts on 3 Aug (UTC dates)."""
    installs = pl.DataFrame(
        {"app_id": ["a"], "user_id": ["u"], "install_time": [datetime(2024, 8, 1)], "install_date": [date(2024, 8, 1)], "is_new_install": [True]}
    )
    rates = pl.DataFrame({"date": [date(2024, 8, 3)], "currency": ["BRL"], "usd_per_unit": [0.2]})
    rows = [{"event_id": "e", "user_id": "u", "event_time": datetime(2024, 8, 3, 1, 13), "revenue": Decimal("10"), "currency": "BRL",
             "product_id": None, "revenue_type": "iap", "app_id": "a"}]
    for timezone in ("UTC", "America/Los_Angeles"):
        result = build_purchases(raw(rows, ["2024-08-04"]), installs, rates, {"iap": 0.3}, timezone, 24)
        assert result.quarantined.height == 0, timezone
        assert result.table["revenue_gross_usd"].to_list() == [Decimal("2.000000")]
        assert result.table["event_date"].to_list() == [date(2024, 8, 3) if timezone == "UTC" else date(2024, 8, 2)]


def test_observation_end_is_the_last_complete_day():
    from clv_pipeline.metrics.observation import ObservationEndError, resolve_observation_end

    # a delivery carries the days before it: an event dated on its delivery day is a partial day
    assert resolve_observation_end(None, date(2024, 2, 2), date(2024, 2, 1)) == date(2024, 1, 31)
    assert resolve_observation_end(None, date(2024, 1, 30), date(2024, 2, 1)) == date(2024, 1, 30)
    assert resolve_observation_end(date(2024, 1, 15), date(2024, 1, 30), date(2024, 2, 1)) == date(2024, 1, 15)
    with pytest.raises(ObservationEndError, match="after the latest event"):
        resolve_observation_end(date(2024, 3, 1), date(2024, 1, 30), date(2024, 2, 1))
    with pytest.raises(ObservationEndError, match="nothing to compute"):
        resolve_observation_end(None, None, date(2024, 2, 1))
    # before the earliest event nothing is observed: refused rather than publishing empty tables
    first = date(2024, 1, 1)
    assert resolve_observation_end(first, date(2024, 1, 30), date(2024, 2, 1), first) == first
    with pytest.raises(ObservationEndError, match=r"2023-12-31 is before the earliest event in the data \(2024-01-01\)"):
        resolve_observation_end(date(2023, 12, 31), date(2024, 1, 30), date(2024, 2, 1), first)
