"""Delivery partitions: one Dagster partition per landing delivery date (YYYY-MM-DD).

Dynamic rather than a fixed daily range: the data sets this pipeline runs on span 1997 (CDNOW)
to today, and only dates that actually have a delivery folder become partitions. The CLI, the
arrival sensor and the nightly schedule register the dates they find in the landing folder.

Dagster orders dynamic partition keys by insertion, and a run over a partition range takes the
keys between its two ends *in that order*. So that a range of keys is a range of dates (in the
UI's partition bar, in UI backfills and in ranged runs), keys are always registered in date
order: when a delivery arrives for a date earlier than the latest registered one, the later keys
are removed and added back after it (`registration_requests`). Removing a dynamic partition key
only touches Dagster's partition list; materializations and check results stay. The runs this
project launches itself never rely on that alone: `partition_ranges` splits an explicit set of
keys into the ranges that cover exactly those keys in the instance's current order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

DELIVERIES = dg.DynamicPartitionsDefinition(name="deliveries")
# Run tags of a run over a range of partitions (what a single-run backfill launches).
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

PartitionRequest = dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest


def registration_requests(existing: Sequence[str], keys: Iterable[str]) -> list[PartitionRequest]:
    """The partition requests that add the `keys` not yet in `existing` while keeping the
    instance's order sorted by date: new keys after the latest one are appended; a new key before
    it makes the later keys be deleted and re-added in order. Empty when nothing is new."""
    known = set(existing)
    new = sorted(set(keys) - known)
    if not new:
        return []
    tail = [k for k in existing if k > new[0]]
    requests: list[PartitionRequest] = []
    if tail:
        requests.append(DELIVERIES.build_delete_request(tail))
    requests.append(DELIVERIES.build_add_request(sorted([*new, *tail])))
    return requests


def order_after(existing: Sequence[str], requests: Sequence[PartitionRequest]) -> list[str]:
    """The instance's partition key order once `requests` are applied."""
    order = list(existing)
    for request in requests:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            gone = set(request.partition_keys)
            order = [k for k in order if k not in gone]
        else:
            known = set(order)
            order += [k for k in request.partition_keys if k not in known]
    return order


def register_deliveries(instance: dg.DagsterInstance, keys: Iterable[str]) -> list[str]:
    """Add delivery dates that the instance does not know yet (in date order); return the new ones.
    (A sensor returns the same `registration_requests` in its result instead.)"""
    existing = instance.get_dynamic_partitions(DELIVERIES.name)
    requests = registration_requests(existing, keys)
    for request in requests:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(DELIVERIES.name, key)
        else:
            instance.add_dynamic_partitions(DELIVERIES.name, list(request.partition_keys))
    return sorted(set(order_after(existing, requests)) - set(existing))


def partition_ranges(order: Sequence[str], keys: Iterable[str]) -> list[tuple[str, str]]:
    """Split `keys` into the fewest (start, end) ranges that, resolved in the partition `order`
    (the instance's key order), cover exactly those keys. One range when the keys are consecutive
    in that order — the normal case, since keys are registered in date order; more when a key in
    between must not be touched (e.g. a registered delivery whose folder was removed)."""
    wanted = set(keys)
    missing = wanted - set(order)
    if missing:
        raise ValueError(f"delivery partitions not registered: {sorted(missing)}")
    ranges: list[tuple[str, str]] = []
    start = end = None
    for key in order:
        if key in wanted:
            start = start or key
            end = key
        elif start is not None:
            ranges.append((start, end))  # type: ignore[arg-type]
            start = end = None
    if start is not None:
        ranges.append((start, end))  # type: ignore[arg-type]
    return ranges
