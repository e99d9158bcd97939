"""The intendo game data (PRODUCT.md §7) imported with `clv import intendo` and run end to end,
compared with an independent computation written directly in SQL over the source CSVs."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from clv_pipeline_tests.conftest import INTENDO_DIR, needs_intendo

pytestmark = [needs_intendo, pytest.mark.slow]

OBSERVATION_END = date(2015, 12, 31)  # the latest event date in the data


def independent(sql: str, params: list) -> pl.DataFrame:
    """Run SQL over the source CSVs (paths bound as parameters)."""
    con = duckdb.connect()
    try:
        return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    finally:
        con.close()


# Cohort = players by install date (first_login, UTC) and acquisition channel; a cohort is mature
# for day n when install date + n <= 2015-12-31; active on day n = a session on install date + n.
RETENTION_SQL = """
WITH players AS (
    SELECT player_id, lower(acquisition) AS media_source, CAST(first_login AS TIMESTAMP)::DATE AS install_date
    FROM read_csv(?, header = true, all_varchar = true)
),
sessions AS (
    SELECT DISTINCT player_id, CAST(session_start AS TIMESTAMP)::DATE AS session_date
    FROM read_csv(?, header = true, all_varchar = true)
),
mature AS (SELECT * FROM players WHERE install_date + ?::INTEGER <= ?::DATE)
SELECT m.media_source,
       count(*) AS cohort_size,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM sessions s WHERE s.player_id = m.player_id AND s.session_date = m.install_date + ?::INTEGER
       )) AS active_users
FROM mature m GROUP BY 1 ORDER BY 1
"""

# Gross revenue of days 0..n per channel over cohorts mature for n. Rows without an event id are
# identified by (player, time, item, revenue) (PRODUCT.md §2): identical rows are one event.
REVENUE_SQL = """
WITH players AS (
    SELECT player_id, lower(acquisition) AS media_source, CAST(first_login AS TIMESTAMP)::DATE AS install_date
    FROM read_csv(?, header = true, all_varchar = true)
),
revenue AS (
    SELECT DISTINCT player_id, time, item_name, item_revenue
    FROM read_csv(?, header = true, all_varchar = true)
)
SELECT p.media_source, round(sum(CAST(r.item_revenue AS DECIMAL(38, 6))), 2) AS revenue_gross
FROM players p JOIN revenue r USING (player_id)
WHERE p.install_date + ?::INTEGER <= ?::DATE
  AND CAST(r.time AS TIMESTAMP)::DATE - p.install_date <= ?::INTEGER
GROUP BY 1 ORDER BY 1
"""


@pytest.mark.parametrize("day", [1, 7, 30])
def test_classic_retention_matches_independent_sql(intendo_run, day):
    expected = independent(
        RETENTION_SQL,
        [str(INTENDO_DIR / "user_summary.csv"), str(INTENDO_DIR / "all_sessions.csv"), day, OBSERVATION_END, day],
    )
    published = (
        intendo_run.table("cohort_retention")
        .filter((pl.col("day_n") == day) & pl.col("active_users").is_not_null())
        .group_by("media_source")
        .agg(pl.col("cohort_size").sum(), pl.col("active_users").sum())
        .sort("media_source")
    )
    assert published.to_dicts() == expected.to_dicts()
    # and the published ratio is that count over the cohort
    assert expected["active_users"].sum() > 0


@pytest.mark.parametrize("day", [7, 30])
def test_cumulative_gross_revenue_matches_independent_sql_to_the_cent(intendo_run, day):
    expected = independent(
        REVENUE_SQL,
        [str(INTENDO_DIR / "user_summary.csv"), str(INTENDO_DIR / "all_revenue.csv"), day, OBSERVATION_END, day],
    )
    published = (
        intendo_run.table("cohort_ltv")
        .filter((pl.col("day_n") == day) & pl.col("revenue_gross").is_not_null())
        .group_by("media_source")
        .agg(pl.col("revenue_gross").sum().round(2))
        .sort("media_source")
    )
    assert len(expected) == 6
    assert published.to_dicts() == expected.to_dicts()


def test_every_source_row_is_accounted_for(intendo_run):
    source_rows = {
        "installs": ("user_summary.csv", 1231),
        "purchases": ("all_revenue.csv", 195917),
        "sessions": ("all_sessions.csv", 61465),
    }
    dq = intendo_run.table("data_quality")
    assert dq["accounting_ok"].all()
    totals = dq.group_by("source").agg(
        pl.col("rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined").sum()
    )
    for source, (file, rows) in source_rows.items():
        counted = independent("SELECT count(*) AS n FROM read_csv(?, header = true, all_varchar = true)", [str(INTENDO_DIR / file)])
        assert counted["n"][0] == rows
        row = totals.filter(pl.col("source") == source).to_dicts()[0]
        assert row["rows_read"] == rows
        assert row["rows_loaded"] + row["rows_duplicate"] + row["rows_quarantined"] == rows
    # the 16 exact duplicate revenue rows of the source are the only duplicates
    dupes = independent(
        "SELECT count(*) - count(DISTINCT (player_id, time, item_name, item_revenue)) AS n "
        "FROM read_csv(?, header = true, all_varchar = true)",
        [str(INTENDO_DIR / "all_revenue.csv")],
    )
    assert totals.filter(pl.col("source") == "purchases")["rows_duplicate"][0] == dupes["n"][0] == 16


def test_retention_is_a_share_and_immature_cells_are_null(intendo_run):
    retention = intendo_run.table("cohort_retention")
    assert retention["retention"].drop_nulls().is_between(0, 1).all()
    assert (retention["rolling_retention"].drop_nulls() >= retention.drop_nulls("retention")["retention"].min()).all()
    late = retention.filter(pl.col("cohort_date") + pl.duration(days=pl.col("day_n")) > pl.lit(OBSERVATION_END))
    assert late.height > 0
    assert late["active_users"].null_count() == late.height
    assert late["retention"].null_count() == late.height


# ROAS per channel, independently: spend of the days mature for N (every (day, channel) has a
# spend row in the fixture, so every paid install has spend), and net revenue (30 % store fee on
# iap, none on ad) of days 0..N of the installs of those days.
ROAS_SQL = """
WITH players AS (
    SELECT player_id, lower(acquisition) AS media_source, CAST(first_login AS TIMESTAMP)::DATE AS install_date
    FROM read_csv(?, header = true, all_varchar = true)
),
revenue AS (
    SELECT DISTINCT player_id, time, item_name, item_revenue, item_type
    FROM read_csv(?, header = true, all_varchar = true)
),
spend AS (
    SELECT lower(media_source) AS media_source, CAST(date AS DATE) AS spend_date, CAST(spend AS DECIMAL(38, 6)) AS spend
    FROM read_csv(?, header = true, all_varchar = true)
),
net AS (
    SELECT p.media_source, sum(CAST(r.item_revenue AS DECIMAL(38, 6))
               * CASE WHEN r.item_type = 'ad' THEN 1.0 ELSE 0.7 END) AS revenue_net
    FROM players p JOIN revenue r USING (player_id)
    WHERE p.install_date + ?::INTEGER <= ?::DATE
      AND CAST(r.time AS TIMESTAMP)::DATE - p.install_date <= ?::INTEGER
    GROUP BY 1
),
cost AS (SELECT media_source, sum(spend) AS spend FROM spend WHERE spend_date + ?::INTEGER <= ?::DATE GROUP BY 1),
installs AS (SELECT media_source, count(*) AS installs FROM players GROUP BY 1)
SELECT c.media_source, i.installs, round(c.spend, 2) AS spend, round(coalesce(n.revenue_net, 0), 2) AS revenue_net,
       round(coalesce(n.revenue_net, 0) / c.spend, 6) AS roas
FROM cost c JOIN installs i USING (media_source) LEFT JOIN net n USING (media_source)
ORDER BY 1
"""


@pytest.mark.parametrize("day", [0, 7, 30])
def test_roas_per_paid_channel_matches_independent_sql(intendo_run, day):
    spend_files = sorted(str(p) for p in (intendo_run.settings.landing_dir / "ad_spend").rglob("*.csv"))
    expected = independent(
        ROAS_SQL,
        [str(INTENDO_DIR / "user_summary.csv"), str(INTENDO_DIR / "all_revenue.csv"), spend_files, day, OBSERVATION_END, day, day, OBSERVATION_END],
    )
    roi = intendo_run.table("channel_roi").filter(pl.col("media_source") != "organic")
    mature = roi.filter(pl.col(f"revenue_net_d{day}").is_not_null() & pl.col("spend").is_not_null())
    published = (
        mature.group_by("media_source")
        .agg(pl.col("spend").sum().alias("_spend"), pl.col(f"revenue_net_d{day}").sum().alias("_revenue"))
        .join(roi.group_by("media_source").agg(pl.col("installs").sum()), on="media_source")
        .with_columns(
            spend=pl.col("_spend").round(2),
            revenue_net=pl.col("_revenue").round(2),
            roas=(pl.col("_revenue").cast(pl.Float64) / pl.col("_spend").cast(pl.Float64)).round(6),
        )
        .select("media_source", "installs", "spend", "revenue_net", "roas")
        .sort("media_source")
    )
    assert set(expected["media_source"]) == {"apple", "facebook", "google", "other_campaign"}
    assert published.select("media_source", "installs", "spend", "revenue_net").to_dicts() == expected.select(
        "media_source", "installs", "spend", "revenue_net"
    ).to_dicts()
    assert published["roas"].to_list() == pytest.approx(expected["roas"].cast(pl.Float64).to_list(), abs=1e-5)
    # crosspromo installs have no spend: reported as paid_without_spend, never dropped
    crosspromo = intendo_run.table("channel_roi").filter(pl.col("media_source") == "crosspromo")
    assert crosspromo.height > 0 and set(crosspromo["acquisition"]) == {"paid_without_spend"}
    # and every spend row is in channel_roi, to the cent
    total = independent("SELECT round(sum(CAST(spend AS DECIMAL(38, 6))), 2) AS s FROM read_csv(?, header = true, all_varchar = true)", [spend_files])
    assert intendo_run.table("channel_roi")["spend"].sum() == total["s"][0]
