"""The `clv` command line: generate sample data, import the real data sets, run or backfill the pipeline."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from datetime import date
from pathlib import Path

from clv_pipeline.settings import Settings, parse_store_fees, parse_timestamp_formats
from clv_pipeline.storage.warehouse import WarehouseLockedError

DEFAULTS = Settings()


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clv", description="Mobile-app cohort retention, CLV and channel ROI pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a seeded, realistic sample landing folder with its ground truth")
    gen.add_argument("--landing", type=Path, default=None, help=f"default: $CLV_LANDING or {DEFAULTS.landing_dir}")
    gen.add_argument("--days", type=int, default=120, help="days of installs and events, at least 14 (default 120)")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--scale", type=float, default=1.0, help="installs per day = 1000 × scale")
    gen.add_argument("--end-date", type=_date, default=None, help="last event day (default 2026-11-30)")
    gen.add_argument(
        "--dirty",
        action="store_true",
        help="also add the faults real exports carry (extra rows only; counts in <landing>/dirt.json)",
    )

    run = sub.add_parser("run", help="load every delivery partition of the landing folder and rebuild everything downstream")
    _add_run_options(run)
    run.add_argument(
        "--prune-missing",
        action="store_true",
        help="drop partitions loaded earlier whose delivery folder is no longer in the landing folder",
    )

    backfill = sub.add_parser(
        "backfill",
        help="reload the delivery partitions dated FROM..TO (e.g. a month of corrected files) and rebuild everything downstream once",
    )
    backfill.add_argument("--from", dest="start", type=_date, required=True, metavar="DATE", help="first delivery date (YYYY-MM-DD)")
    backfill.add_argument("--to", dest="end", type=_date, required=True, metavar="DATE", help="last delivery date, inclusive")
    _add_run_options(backfill)

    imp = sub.add_parser("import", help="convert a real data set into the landing layout")
    imp_sub = imp.add_subparsers(dest="dataset", required=True)
    intendo = imp_sub.add_parser("intendo", help="Super Jetroid (intendo) CSVs: user_summary, all_revenue, all_sessions")
    intendo.add_argument("src_dir", type=Path)
    intendo.add_argument("--landing", type=Path, required=True)
    cdnow = imp_sub.add_parser("cdnow", help="CDNOW_master.txt or CDNOW_sample.txt")
    cdnow.add_argument("file", type=Path)
    cdnow.add_argument("--landing", type=Path, required=True)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timestamp-format",
        action="append",
        default=[],
        metavar="SOURCE=FORMAT",
        help="a timestamp format a source's files use besides ISO 8601, e.g. 'purchases=%%m/%%d/%%Y %%H:%%M' "
        "(without it such dates are quarantined: day/month order is never guessed)",
    )
    # Every default below is the CLV_* environment variable when set (as in the Dagster UI), else the built-in one.
    parser.add_argument("--landing", type=Path, help=f"landing folder (default: $CLV_LANDING or {DEFAULTS.landing_dir})")
    parser.add_argument("--warehouse", type=Path, help=f"build database (default: $CLV_WAREHOUSE or {DEFAULTS.warehouse_path})")
    parser.add_argument("--serving", type=Path, help=f"serving folder (default: $CLV_SERVING or {DEFAULTS.serving_dir})")
    parser.add_argument(
        "--observation-end",
        type=_date,
        help="last date of data to use (default: $CLV_OBSERVATION_END, else the last complete day: the latest event "
        "date, at most the day before the latest delivery)",
    )
    parser.add_argument("--time-unit", choices=["days", "weeks"], help=f"time unit of the CLV models (default: $CLV_TIME_UNIT or {DEFAULTS.time_unit})")
    parser.add_argument("--timezone", help=f"reporting time zone (default: $CLV_TIMEZONE or {DEFAULTS.reporting_timezone})")
    parser.add_argument(
        "--day-index", choices=["calendar", "24h"], help=f"day index convention (default: $CLV_DAY_INDEX_MODE or {DEFAULTS.day_index_mode})"
    )
    parser.add_argument(
        "--store-fee",
        action="append",
        default=[],
        metavar="TYPE=RATE",
        help="store fee of a revenue type, e.g. --store-fee iap=0 for sales outside app stores "
        f"(default: $CLV_STORE_FEES or {', '.join(f'{k}={v:g}' for k, v in DEFAULTS.store_fees.items())})",
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "import":
            return _import(args)
        return _run(args)
    except (FileNotFoundError, ValueError, WarehouseLockedError) as exc:
        print(f"clv {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _generate(args) -> int:
    from clv_pipeline.sample_data import DEFAULT_END_DATE, generate_sample

    if args.landing is None:
        args.landing = Settings.from_env().landing_dir
    truth = generate_sample(args.landing, days=args.days, seed=args.seed, end_date=args.end_date or DEFAULT_END_DATE, scale=args.scale)
    rows = {source: counts["rows_written"] for source, counts in truth["sources"].items()}
    print(f"Sample landing folder written to {args.landing} (seed {args.seed}, {args.days} days): " + ", ".join(f"{k} {v:,}" for k, v in rows.items() if v is not None))
    print(f"Ground truth: {args.landing / 'ground_truth.json'}")
    if args.dirty:
        from clv_pipeline.sample_data.dirt import DIRT_FILE, add_dirt

        injected = add_dirt(args.landing, seed=args.seed)
        faults = sum(n for counts in injected.values() for reason, n in counts.items() if reason != "duplicates")
        duplicates = sum(counts.get("duplicates", 0) for counts in injected.values())
        print(f"Dirt added: {faults:,} faulty rows and {duplicates:,} duplicate rows ({args.landing / DIRT_FILE})")
    return 0


def _import(args) -> int:
    if args.dataset == "intendo":
        from clv_pipeline.ingestion.importers.intendo import import_intendo

        summary = import_intendo(args.src_dir, args.landing)
    else:
        from clv_pipeline.ingestion.importers.cdnow import import_cdnow

        summary = import_cdnow(args.file, args.landing)
    rows = ", ".join(f"{k} {v:,}" for k, v in summary["rows"].items())
    print(f"Imported {args.dataset} into {args.landing}: {rows} (deliveries {summary['first_delivery']} … {summary['last_delivery']})")
    return 0


def _run(args) -> int:
    from clv_pipeline.cli.run import backfill, print_summary, run_pipeline

    flags = {
        "landing_dir": args.landing,
        "warehouse_path": args.warehouse,
        "serving_dir": args.serving,
        "observation_end": args.observation_end,
        "time_unit": args.time_unit,
        "reporting_timezone": args.timezone,
        "day_index_mode": args.day_index,
        "store_fees": parse_store_fees(args.store_fee) if args.store_fee else None,
        "timestamp_formats": parse_timestamp_formats(args.timestamp_format) if args.timestamp_format else None,
    }
    settings = Settings.from_env().replace(**{name: value for name, value in flags.items() if value is not None})
    if args.command == "backfill":
        summary = backfill(settings, args.start, args.end)
    else:
        summary = run_pipeline(settings, prune_missing=args.prune_missing)
    print_summary(summary, settings)
    return 0 if summary.success else 1


if __name__ == "__main__":
    sys.exit(main())
