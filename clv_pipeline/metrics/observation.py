"""The observation end: the last date of data a run uses (PRODUCT.md §4 "last complete data date")."""

from __future__ import annotations

from datetime import date, timedelta


class ObservationEndError(ValueError):
    pass


def resolve_observation_end(
    configured: date | None, latest_event: date | None, latest_delivery: date | None, earliest_event: date | None = None
) -> date:
    """The configured date, or by default the last complete day of data: the latest event date,
    but no later than the day before the latest delivery (a delivery carries the events of the
    days before it; an event dated on or after its delivery day — clock skew, a partial day —
    does not make that day complete). A configured date after the latest event is refused: the
    days after the data would count as observed with no activity, showing 0 where the truth is
    unknown. A configured date before the earliest event is refused too: nothing would be
    observed, and the run would replace the published tables with empty ones."""
    if latest_event is None:
        raise ObservationEndError("no installs, purchases or sessions are loaded: nothing to compute")
    if configured is not None:
        if configured > latest_event:
            raise ObservationEndError(
                f"observation end {configured} is after the latest event in the data ({latest_event}); "
                f"choose a date on or before {latest_event}"
            )
        if earliest_event is not None and configured < earliest_event:
            raise ObservationEndError(
                f"observation end {configured} is before the earliest event in the data ({earliest_event}): "
                f"nothing would be observed; choose a date from {earliest_event} to {latest_event}"
            )
        return configured
    if latest_delivery is not None:
        return min(latest_event, latest_delivery - timedelta(days=1))
    return latest_event
