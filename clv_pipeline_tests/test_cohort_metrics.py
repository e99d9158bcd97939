"""Cohort retention and revenue on hand-made cohorts with known answers (PRODUCT.md §4)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest

from clv_pipeline.metrics import cohorts
from clv_pipeline.staging.tables import local_date

DIMS = dict(media_source="net_a", campaign=None, country="US", platform="ios")


def installs(rows: list[tuple[str, str]], app: str = "app") -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "app_id": pl.Series([app] * len(rows), dtype=pl.String),
            "user_id": pl.Series([u for u, _ in rows], dtype=pl.String),
            "install_time": pl.Series([datetime.fromisoformat(t) for _, t in rows], dtype=pl.Datetime("us")),
            "is_new_install": [True] * len(rows),
            **{k: pl.Series([v] * len(rows), dtype=pl.String) for k, v in DIMS.items()},
        }
    )
    return frame.with_columns(install_date=local_date("install_time", "UTC"))


def sessions(rows: list[tuple[str, str]], app: str = "app", timezone: str = "UTC") -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "app_id": pl.Series([app] * len(rows), dtype=pl.String),
            "user_id": pl.Series([u for u, _ in rows], dtype=pl.String),
            "session_time": pl.Series([datetime.fromisoformat(t) for _, t in rows], dtype=pl.Datetime("us")),
        }
    )
    return frame.with_columns(session_date=local_date("session_time", timezone))


def purchases(rows: list[tuple[str, str, str, str]], app: str = "app") -> pl.DataFrame:
    """(user, time, gross USD, revenue_type); net = gross × 0.7 for iap, gross for ad."""
    gross = [Decimal(g) for _, _, g, _ in rows]
    types = [t for _, _, _, t in rows]
    net = [g * (Decimal("0.7") if t == "iap" else 1) for g, t in zip(gross, types)]
    frame = pl.DataFrame(
        {
            "app_id": pl.Series([app] * len(rows), dtype=pl.String),
            "user_id": pl.Series([u for u, _, _, _ in rows], dtype=pl.String),
            "event_time": pl.Series([datetime.fromisoformat(t) for _, t, _, _ in rows], dtype=pl.Datetime("us")),
            "revenue_gross_usd": pl.Series(gross, dtype=pl.Decimal(38, 6)),
            "revenue_net_usd": pl.Series(net, dtype=pl.Decimal(38, 6)),
            "revenue_type": pl.Series(types, dtype=pl.String),
        }
    )
    return frame.with_columns(event_date=local_date("event_time", "UTC"))


def members(frame: pl.DataFrame, end: date) -> pl.DataFrame:
    return cohorts.cohort_members(frame, end)


def cell(table: pl.DataFrame, day: int) -> dict:
    rows = table.filter(pl.col("day_n") == day).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_classic_and_rolling_retention():
    inst = installs([("u1", "2024-01-01T10:00:00"), ("u2", "2024-01-01T12:00:00"), ("u3", "2024-01-01T23:00:00"), ("u4", "2024-01-01T01:00:00")])
    sess = sessions(
        [
            ("u1", "2024-01-01T10:05:00"),
            ("u1", "2024-01-02T09:00:00"),  # day 1
            ("u2", "2024-01-08T09:00:00"),  # day 7
            ("u3", "2024-01-02T09:00:00"),  # day 1
            ("u3", "2024-01-03T09:00:00"),  # day 2
        ]
    )
    table = cohorts.cohort_retention(members(inst, date(2024, 1, 31)), cohorts.activity_events(sess, purchases([])), [0, 1, 2, 7, 30], date(2024, 1, 31))
    d1 = cell(table, 1)
    assert (d1["cohort_size"], d1["active_users"], d1["retention"]) == (4, 2, 0.5)
    assert (d1["rolling_active_users"], d1["rolling_retention"]) == (3, 0.75)  # u1, u2 (day 7), u3
    d2 = cell(table, 2)
    assert (d2["active_users"], d2["rolling_active_users"]) == (1, 2)
    d7 = cell(table, 7)
    assert (d7["active_users"], d7["rolling_active_users"]) == (1, 1)
    d0 = cell(table, 0)
    assert d0["active_users"] == 1  # only u1 had a session on the install day here
    assert cell(table, 30)["active_users"] == 0  # mature (Jan 31), nobody active: 0, not null


def test_immature_days_are_null_never_zero():
    inst = installs([("u1", "2024-01-10T10:00:00")])
    sess = sessions([("u1", "2024-01-11T10:00:00")])
    table = cohorts.cohort_retention(members(inst, date(2024, 1, 15)), cohorts.activity_events(sess, purchases([])), [1, 5, 6, 30], date(2024, 1, 15))
    assert cell(table, 1)["retention"] == 1.0
    assert cell(table, 5)["retention"] == 0.0  # 10 + 5 = 15 <= 15: mature
    for day in (6, 30):
        row = cell(table, day)
        assert row["active_users"] is None and row["retention"] is None
        assert row["rolling_active_users"] is None and row["rolling_retention"] is None
        assert row["cohort_size"] == 1


@pytest.mark.parametrize(
    ("mode", "expected_day"),
    [("calendar", 1), ("24h", 0)],
)
def test_event_23_30_after_a_late_install(mode, expected_day):
    """Install at 23:30, session 30 minutes later: calendar day 1 (AppsFlyer) but still inside the
    first 24-hour window (Adjust)."""
    inst = installs([("u1", "2024-03-01T23:30:00")])
    sess = sessions([("u1", "2024-03-02T00:00:00")])
    table = cohorts.cohort_retention(members(inst, date(2024, 3, 31)), cohorts.activity_events(sess, purchases([])), [0, 1], date(2024, 3, 31), mode)
    assert cell(table, expected_day)["active_users"] == 1
    assert cell(table, 1 - expected_day)["active_users"] == 0


def test_event_at_23_30_on_install_day_is_day_0_in_both_modes():
    inst = installs([("u1", "2024-03-01T08:00:00")])
    sess = sessions([("u1", "2024-03-01T23:30:00")])
    for mode in ("calendar", "24h"):
        table = cohorts.cohort_retention(members(inst, date(2024, 3, 31)), cohorts.activity_events(sess, purchases([])), [0, 1], date(2024, 3, 31), mode)
        assert cell(table, 0)["active_users"] == 1, mode
        assert cell(table, 1)["active_users"] == 0, mode


def test_24h_mode_needs_the_whole_window_observed():
    inst = installs([("u1", "2024-03-01T23:30:00")])
    table = cohorts.cohort_retention(members(inst, date(2024, 3, 2)), cohorts.activity_events(sessions([]), purchases([])), [0, 1], date(2024, 3, 2), "24h")
    assert cell(table, 0)["active_users"] == 0  # window ends 03-02 23:30, data through 03-02
    assert cell(table, 1)["active_users"] is None


def test_reporting_timezone_moves_the_install_date():
    """22:30 UTC on 1 March is 2 March in Tokyo: a different cohort date and day index."""
    frame = pl.DataFrame({"t": [datetime(2024, 3, 1, 22, 30)]})
    assert frame.select(local_date("t", "UTC")).item() == date(2024, 3, 1)
    assert frame.select(local_date("t", "Asia/Tokyo")).item() == date(2024, 3, 2)


def test_purchases_count_as_activity_only_for_apps_without_sessions():
    inst = pl.concat([installs([("u1", "2024-01-01T10:00:00")], app="a"), installs([("u2", "2024-01-01T10:00:00")], app="b")])
    sess = sessions([("u1", "2024-01-03T10:00:00")], app="a")
    buys = pl.concat([purchases([("u1", "2024-01-02T10:00:00", "1", "iap")], app="a"), purchases([("u2", "2024-01-02T10:00:00", "1", "iap")], app="b")])
    activity = cohorts.activity_events(sess, buys)
    table = cohorts.cohort_retention(members(inst, date(2024, 1, 31)), activity, [1, 2], date(2024, 1, 31))
    a = table.filter(pl.col("app_id") == "a")
    b = table.filter(pl.col("app_id") == "b")
    assert a.filter(pl.col("day_n") == 1)["active_users"][0] == 0  # app a has sessions: its purchase is not activity
    assert a.filter(pl.col("day_n") == 2)["active_users"][0] == 1
    assert b.filter(pl.col("day_n") == 1)["active_users"][0] == 1  # app b has no sessions: purchases are activity


def test_cumulative_revenue_payers_and_refund_after_the_cohort_day():
    inst = installs([("u1", "2024-01-01T10:00:00"), ("u2", "2024-01-01T11:00:00"), ("u3", "2024-01-01T12:00:00")])
    buys = purchases(
        [
            ("u1", "2024-01-01T10:30:00", "10.00", "iap"),  # day 0
            ("u1", "2024-01-05T10:30:00", "-10.00", "iap"),  # refund on day 4
            ("u2", "2024-01-03T10:00:00", "4.99", "iap"),  # day 2
            ("u3", "2024-01-02T10:00:00", "0.05", "ad"),  # ad revenue: revenue, not a payer
        ]
    )
    table = cohorts.cohort_ltv(members(inst, date(2024, 1, 31)), buys, [0, 1, 3, 7], date(2024, 1, 31))
    d0, d1, d3, d7 = (cell(table, d) for d in (0, 1, 3, 7))
    assert d0["revenue_gross"] == Decimal("10.000000") and d0["revenue_net"] == Decimal("7.000000")
    assert d0["payers"] == 1 and d0["ltv_gross"] == pytest.approx(10 / 3)
    assert d1["revenue_gross"] == Decimal("10.050000") and d1["payers"] == 1
    assert d3["revenue_gross"] == Decimal("15.040000") and d3["payers"] == 2
    assert d3["revenue_net"] == Decimal("7.000000") + Decimal("3.493000") + Decimal("0.050000")
    # the refund lands on day 4: cumulative gross drops back, payers stay (they did pay)
    assert d7["revenue_gross"] == Decimal("5.040000")
    assert d7["revenue_net"] == Decimal("3.543000")
    assert d7["payers"] == 2
    assert d7["payer_rate"] == pytest.approx(2 / 3)
    assert d7["arppu_net"] == pytest.approx(3.543 / 2)


def test_revenue_is_null_when_immature_and_events_after_the_observation_end_are_ignored():
    inst = installs([("u1", "2024-01-01T10:00:00")])
    buys = purchases([("u1", "2024-01-02T10:00:00", "1.00", "iap"), ("u1", "2024-01-09T10:00:00", "5.00", "iap")])
    table = cohorts.cohort_ltv(members(inst, date(2024, 1, 5)), buys, [1, 7], date(2024, 1, 5))
    assert cell(table, 1)["revenue_gross"] == Decimal("1.000000")
    assert cell(table, 7)["revenue_gross"] is None and cell(table, 7)["payers"] is None


def test_reinstalls_and_installs_after_the_observation_end_are_not_cohort_members():
    inst = installs([("u1", "2024-01-01T10:00:00"), ("u2", "2024-01-01T10:00:00"), ("u3", "2024-02-10T10:00:00")])
    inst = inst.with_columns(is_new_install=pl.col("user_id") != "u2")
    got = members(inst, date(2024, 1, 31))
    assert got["user_id"].to_list() == ["u1"]
