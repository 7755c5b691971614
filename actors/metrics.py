"""The one metrics module: everything goes through `ray.util.metrics`.

Metrics created here reach Ray's Prometheus endpoint and the Ray dashboard from any actor
or Serve replica. Outside Ray (unit tests) the same objects exist and record nothing.
Names are prefixed `tandem_`; later modules add theirs through `counter`/`histogram`/`gauge`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ray.util import metrics as ray_metrics

_LATENCY_BOUNDARIES_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
_BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

_counters: dict[str, ray_metrics.Counter] = {}
_histograms: dict[str, ray_metrics.Histogram] = {}
_gauges: dict[str, ray_metrics.Gauge] = {}


def counter(name: str, description: str, tag_keys: Sequence[str] = ()) -> ray_metrics.Counter:
    full = f"tandem_{name}"
    if full not in _counters:
        _counters[full] = ray_metrics.Counter(full, description, tag_keys=tuple(tag_keys))
    return _counters[full]


def histogram(
    name: str,
    description: str,
    boundaries: Sequence[float] = _LATENCY_BOUNDARIES_S,
    tag_keys: Sequence[str] = (),
) -> ray_metrics.Histogram:
    full = f"tandem_{name}"
    if full not in _histograms:
        _histograms[full] = ray_metrics.Histogram(
            full, description, boundaries=list(boundaries), tag_keys=tuple(tag_keys)
        )
    return _histograms[full]


def gauge(name: str, description: str, tag_keys: Sequence[str] = ()) -> ray_metrics.Gauge:
    full = f"tandem_{name}"
    if full not in _gauges:
        _gauges[full] = ray_metrics.Gauge(full, description, tag_keys=tuple(tag_keys))
    return _gauges[full]


class StoreMetrics:
    """The Store's figures: batch size, commit latency, writes and failed writes."""

    def __init__(self) -> None:
        self._batch = histogram("store_batch_size", "requests per group commit", _BATCH_BOUNDARIES)
        self._latency = histogram("store_commit_seconds", "time to plan, write and commit")
        self._writes = counter("store_writes_total", "write requests committed or failed")
        self._failed = counter("store_write_failures_total", "write requests that failed")
        self._exported = counter("eventlog_exported_total", "events landed as Parquet")
        self._lag = gauge("eventlog_lag_events", "committed events not yet landed as Parquet")

    def on_batch(self, size: int, commit_seconds: float, failed: int) -> None:
        self._batch.observe(size)
        self._latency.observe(commit_seconds)
        self._writes.inc(size)
        if failed:
            self._failed.inc(failed)

    def on_export(self, rows: int, lag: int) -> None:
        if rows:
            self._exported.inc(rows)
        self._lag.set(lag)
