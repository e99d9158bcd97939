"""Raw layer: one asset per source, partitioned by delivery date.

A run over a range of partitions reads and validates them in chunks (one Great Expectations
call per chunk), then replaces each chunk's partitions — raw rows and quarantined rows — in one
DuckDB transaction, so re-loading a partition is idempotent and a crash leaves every partition
either entirely old or entirely new. A partition whose files cannot be read keeps its
previous contents and fails the blocking `files_readable` check.
"""

from __future__ import annotations

import dagster as dg

from clv_pipeline.ingestion.landing import invalid_partition_folders
from clv_pipeline.ingestion.load import PartitionFailure, RawBatch, load_deliveries
from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.orchestration.checks import rule_check_results, rule_check_specs
from clv_pipeline.orchestration.partitions import DELIVERIES
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.orchestration.run_summary import FAILED_PARTITIONS_KEY
from clv_pipeline.storage.layers import write_raw_partitions
from clv_pipeline.validation.runner import build_data_docs
from clv_pipeline.validation.suites import RAW_SUITES

# Partitions validated and written per chunk (bounds memory on long backfills).
CHUNK = 31
FILES_READABLE = "files_readable"


def _files_readable_result(failures: list[PartitionFailure], partitions: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=FILES_READABLE,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description="every landing file of the loaded partitions could be read"
        if not failures
        else "; ".join(f.message for f in failures[:10]),
        metadata={
            "partitions_checked": partitions,
            "failed_partitions": [f.partition for f in failures],
            "errors": [f.message for f in failures],
        },
    )


def build_raw_asset(source_name: str) -> dg.AssetsDefinition:
    source = SOURCES[source_name]
    key = dg.AssetKey(f"raw_{source_name}")
    checks = [
        dg.AssetCheckSpec(FILES_READABLE, asset=key, blocking=True, description="landing files are readable (file-level errors fail the partition)"),
        *rule_check_specs(key, RAW_SUITES[source_name], blocking_errors=False),
    ]

    @dg.asset(
        key=key,
        group_name="raw",
        partitions_def=DELIVERIES,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=checks,
        pool="clv_warehouse",
        description=f"Raw {source_name} rows as delivered ({source.description}), typed and validated; "
        "invalid rows are quarantined with reason codes.",
        kinds={"duckdb", "polars"},
    )
    def raw_asset(context, warehouse: WarehouseResource, clv_settings: ClvSettingsResource):
        settings = clv_settings.get()
        keys = sorted(context.partition_keys)
        batches: list[RawBatch] = []
        failures: list[PartitionFailure] = []
        rows_written = 0
        quarantined = 0
        with warehouse.open() as wh:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                batch = load_deliveries(
                    settings.landing_dir, source_name, chunk, settings.read_options(source_name), docs_dir=settings.data_docs_dir
                )
                failures.extend(batch.failures)
                written = write_raw_partitions(wh, source_name, batch.loaded_partitions, batch.rows)
                rows_written += written.rows
                quarantined += written.quarantined
                for failure in batch.failures:
                    context.log.error(failure.message)
                batches.append(batch)
        for folder in invalid_partition_folders(settings.landing_dir, source_name):
            failure = PartitionFailure(source_name, folder.name, str(folder), "partition folder is not a date (expected YYYY-MM-DD); its files were not loaded")
            context.log.error(failure.message)
            failures.append(failure)
        results = [_files_readable_result(failures, len(keys))]
        docs = build_data_docs(settings.data_docs_dir)
        validated = [b for b in batches if b.validation]
        results += rule_check_results(key, RAW_SUITES[source_name], [b.validation for b in validated], frames=[b.rows for b in validated])
        yield dg.MaterializeResult(
            metadata={
                "partitions": len(keys),
                "partitions_failed": len({f.partition for f in failures}),
                FAILED_PARTITIONS_KEY: dg.MetadataValue.json(sorted({f.partition for f in failures})),
                "rows_read": rows_written,
                "rows_quarantined": quarantined,
                "data_docs": dg.MetadataValue.path(str(docs)) if docs else "none",
                "dagster/row_count": rows_written,
            },
            check_results=results,
        )

    return raw_asset


RAW_ASSETS = [build_raw_asset(name) for name in SOURCES]
