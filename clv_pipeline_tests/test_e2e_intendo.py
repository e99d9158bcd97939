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
