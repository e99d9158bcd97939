"""Delivery partitions: one Dagster partition per landing delivery date (YYYY-MM-DD).

Dynamic rather than a fixed daily range: the data sets this pipeline runs on span 1997 (CDNOW)
to today, and only dates that actually have a delivery folder become partitions. The CLI and
the sensor register the dates they find in the landing folder.
"""

from __future__ import annotations

import dagster as dg

DELIVERIES = dg.DynamicPartitionsDefinition(name="deliveries")


def register_deliveries(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """Add delivery dates that the instance does not know yet; return the new ones."""
    known = set(instance.get_dynamic_partitions(DELIVERIES.name))
    new = sorted(k for k in keys if k not in known)
    if new:
        instance.add_dynamic_partitions(DELIVERIES.name, new)
    return new
