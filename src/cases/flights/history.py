"""What an operations desk has seen by the moment of prediction (`lead_hours` before the scheduled
departure): the departure delays of flights that have already left the origin (all carriers, and
the flight's own carrier), the flights scheduled to leave there in the window that have not
left by then (delayed or cancelled: the queue on the ground), and the last
departure of the same aircraft (tail number). Only flights whose ACTUAL departure happened at or
before the prediction time count; nothing later (the flight's own departure, later flights, their
arrivals) is read. Vectorised: sorted cumulative sums and `merge_asof`, no loop over rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cases.errors import CasebookError

HISTORY_COLUMNS = ["origin_departed", "origin_dep_delay", "origin_not_departed",
                   "carrier_origin_departed", "carrier_origin_dep_delay",
                   "tail_last_dep_delay", "tail_last_dep_minutes_ago"]


def scheduled_departure(flights: pd.DataFrame) -> pd.Series:
    """The scheduled departure in UTC: the package's `time_hour` (the scheduled hour, UTC) plus
    the scheduled minute."""
    return flights["time_hour"] + pd.to_timedelta(flights["minute"].astype(int), unit="min")


def _minutes(ts: pd.Series, origin: pd.Timestamp) -> np.ndarray:
    return ((ts - origin).dt.total_seconds() / 60).to_numpy(dtype=float)


def window_sums(event_key: np.ndarray, event_time: np.ndarray, event_value: np.ndarray,
                query_key: np.ndarray, query_time: np.ndarray,
                window: float) -> tuple[np.ndarray, np.ndarray]:
    """For each query: the count and the sum of `event_value` over the events of the same key
    with `query_time - window < event_time <= query_time` (times in whole minutes; events with a
    missing time never happened and are skipped). One sort and two binary searches: the key is
    folded into the time as key * span + time."""
    ok = ~np.isnan(event_time)
    codes, _ = pd.factorize(pd.Series(np.concatenate([event_key[ok], query_key]), dtype=object))
    ek, qk = codes[:ok.sum()].astype(np.int64), codes[ok.sum():].astype(np.int64)
    et = np.rint(event_time[ok]).astype(np.int64)
    qt = np.rint(query_time).astype(np.int64)
    lo_t = min(et.min(initial=0), qt.min(initial=0)) - int(window) - 1
    span = max(et.max(initial=0), qt.max(initial=0)) - lo_t + 1
    composite = ek * span + (et - lo_t)
    order = np.argsort(composite, kind="stable")
    composite = composite[order]
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(event_value, dtype=float)[ok][order])])
    base = qk * span - lo_t
    hi = np.searchsorted(composite, base + qt, side="right")
    lo = np.searchsorted(composite, base + qt - int(window), side="right")
    return (hi - lo).astype(float), csum[hi] - csum[lo]


def window_pending(event_key: np.ndarray, event_sched: np.ndarray, event_done: np.ndarray,
                   query_key: np.ndarray, query_time: np.ndarray, window: float,
                   max_pairs: int = 4_000_000) -> np.ndarray:
    """For each query: how many events of the same key were scheduled in `query_time - window <
    sched <= query_time` and had not happened by `query_time` (`event_done` later, or missing:
    never). Never negative, never more than the events scheduled in the window. The events are
    sorted by (key, schedule) once; each query's window is a contiguous run of them, read in
    chunks of at most `max_pairs` (query, event) pairs."""
    codes, _ = pd.factorize(pd.Series(np.concatenate([event_key, query_key]), dtype=object))
    ek, qk = codes[:len(event_key)].astype(np.int64), codes[len(event_key):].astype(np.int64)
    es = np.rint(np.asarray(event_sched, dtype=float)).astype(np.int64)
    qt = np.rint(np.asarray(query_time, dtype=float)).astype(np.int64)
    lo_t = min(es.min(initial=0), qt.min(initial=0)) - int(window) - 1
    span = max(es.max(initial=0), qt.max(initial=0)) - lo_t + 1
    composite = ek * span + (es - lo_t)
    order = np.argsort(composite, kind="stable")
    composite = composite[order]
    done = np.asarray(event_done, dtype=float)[order]
    done = np.where(np.isnan(done), np.inf, done)   # never happened: pending forever
    base = qk * span - lo_t
    hi = np.searchsorted(composite, base + qt, side="right")
    lo = np.searchsorted(composite, base + qt - int(window), side="right")
    sizes = hi - lo
    out = np.zeros(len(qt), dtype=float)
    ends = np.cumsum(sizes)
    start = 0
    while start < len(qt):
        # as many queries as fit in max_pairs pairs (at least one)
        stop = max(int(np.searchsorted(ends, (ends[start - 1] if start else 0) + max_pairs,
                                       side="right")), start + 1)
        n = sizes[start:stop]
        query = np.repeat(np.arange(start, stop), n)
        offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        pending = done[lo[query] + offset] > qt[query]
        out[start:stop] = np.bincount(query - start, weights=pending, minlength=stop - start)
        start = stop
    return out


def observed_delays(flights: pd.DataFrame, lead_hours: float, window_min: float) -> pd.DataFrame:
    """The history features of every flight as of `lead_hours` before its scheduled departure,
    over the last `window_min` minutes before then (see the module note)."""
    if window_min <= 0:
        raise CasebookError(f"case.features.history_window_min={window_min}; expected minutes > 0")
    sched_ts = scheduled_departure(flights)
    t0 = sched_ts.min()
    sched = _minutes(sched_ts, t0)
    delay = flights["dep_delay"].to_numpy(dtype=float)
    departed = sched + delay                       # missing: cancelled, never departed
    asof = sched - 60.0 * float(lead_hours)        # the prediction time
    origin = flights["origin"].astype(str).to_numpy(dtype=object)
    carrier_origin = (flights["carrier"].astype(str) + "|" + flights["origin"].astype(str)
                      ).to_numpy(dtype=object)
    out = pd.DataFrame(index=flights.index)
    n, total = window_sums(origin, departed, delay, origin, asof, window_min)
    out["origin_departed"] = n
    out["origin_dep_delay"] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    # the queue: scheduled to leave in the window (the published schedule) and not gone by then
    out["origin_not_departed"] = window_pending(origin, sched, departed, origin, asof, window_min)
    n, total = window_sums(carrier_origin, departed, delay, carrier_origin, asof, window_min)
    out["carrier_origin_departed"] = n
    out["carrier_origin_dep_delay"] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    last = _last_departure(flights["tailnum"], departed, delay, asof)
    out["tail_last_dep_delay"] = last["delay"].to_numpy()
    out["tail_last_dep_minutes_ago"] = last["ago"].to_numpy()
    return out[HISTORY_COLUMNS]


def _last_departure(tail: pd.Series, departed: np.ndarray, delay: np.ndarray,
                    asof: np.ndarray) -> pd.DataFrame:
    """The same aircraft's latest departure at or before each flight's prediction time: its
    delay and how many minutes before the prediction time it left (missing: none seen)."""
    tails = tail.astype(object).where(tail.notna())
    events = pd.DataFrame({"tail": tails.to_numpy(), "t": departed, "delay": delay})
    events = events.dropna(subset=["tail", "t"]).sort_values("t", kind="stable")
    queries = pd.DataFrame({"tail": tails.to_numpy(), "t": asof, "row": np.arange(len(tail))})
    queries = queries.dropna(subset=["tail"]).sort_values("t", kind="stable")
    merged = pd.merge_asof(queries, events.rename(columns={"t": "t_event"}), left_on="t",
                           right_on="t_event", by="tail", allow_exact_matches=True,
                           direction="backward")
    merged["ago"] = merged["t"] - merged["t_event"]
    return (merged.set_index("row")[["delay", "ago"]]
            .reindex(np.arange(len(tail))).reset_index(drop=True))
