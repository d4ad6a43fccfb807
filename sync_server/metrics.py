"""Prometheus metrics of one node (`GET /metrics`, the text format of `prometheus-client`).

Requests are counted and timed as they are answered (`observe_request`), and commits as they
are made, in plain numbers (no prometheus-client metric objects, whose locks cost more than the
counting); those and everything else are read when Prometheus scrapes, so the hot paths
(requests, fan-out, frame writes) pay next to nothing for them:

    sync_connections{protocol}             realtime connections open (native, twilsock)
    sync_subscriptions                     subscriptions of those connections
    sync_requests_total{type, code}        requests answered; code is "ok" or the error code
    sync_request_duration_seconds{type}    time to answer them
    sync_deliveries_total                  events handed to subscribed connections
    sync_outbox_frames                     frames queued for slow clients
    sync_slow_consumer_disconnects_total   clients dropped for falling too far behind (4008)
    sync_storage_commit_seconds            durable writes (until committed, or in SQLite's write log)
    sync_broker_reconnects_total           reconnections to the other nodes (Redis)
    sync_broker_gap_repairs_total          gaps in the event stream repaired from storage
    sync_webhook_deliveries_total{result}  delivered, failed (after every retry), dropped
    sync_webhook_queue                     webhook deliveries pending
plus the library's process, platform and garbage-collector collectors.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterator, Set
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .broker import Broker
    from .webhooks import WebhookDispatcher

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Timing:
    """A latency histogram (`_LATENCY_BUCKETS`) kept as plain numbers: `observe` is a bisect
    and two additions, with no lock (the event loop's thread is the only writer), where
    prometheus-client's `Histogram.observe` takes a lock and walks the buckets; it is
    exposed at scrape time (`_LiveCollector`)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative counts by upper bound, as Prometheus wants them."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*_LATENCY_BUCKETS, None), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound is None else repr(bound), total))
        return out


class Queued(Protocol):
    """An outbox, as the metrics see it."""

    @property
    def queued_frames(self) -> int: ...


class Subscribed(Protocol):
    """A session, as the metrics see it."""

    @property
    def subscription_count(self) -> int: ...


class Metrics:
    """The metrics of one app; its registry is its own (several apps in one process, as in
    tests, do not mix)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        # Requests answered by (type, code: None when it succeeded), and their times by type.
        self.requests: dict[tuple[str, int | None], int] = {}
        self.request_seconds: dict[str, Timing] = {}
        self.commit_seconds = Timing()
        self.connections: Tally[str] = Tally()
        self.slow_consumer_disconnects = 0
        self.outboxes: weakref.WeakSet[Queued] = weakref.WeakSet()
        self.sessions: Set[Subscribed] = frozenset()  # the service's live sessions
        self.broker: Broker | None = None
        self.webhooks: WebhookDispatcher | None = None
        self.registry.register(_LiveCollector(self))

    def observe_request(self, type_: str, code: int | None, seconds: float) -> None:
        """One request answered: `code` None when it succeeded."""
        key = (type_, code)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        timed = self.request_seconds.get(type_)
        if timed is None:
            timed = self.request_seconds[type_] = Timing()
        timed.observe(seconds)

    def slow_consumer(self) -> None:
        self.slow_consumer_disconnects += 1

    def connection_opened(self, protocol: str, outbox: Queued) -> None:
        self.connections[protocol] += 1
        self.outboxes.add(outbox)

    def connection_closed(self, protocol: str) -> None:
        self.connections[protocol] -= 1

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """What is read from the live objects at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        requests = CounterMetricFamily(
            "sync_requests", "Requests answered.", labels=["type", "code"]
        )
        for (type_, code), count in list(m.requests.items()):
            requests.add_metric([type_, "ok" if code is None else str(code)], count)
        yield requests
        durations = HistogramMetricFamily(
            "sync_request_duration_seconds", "Time to answer a request.", labels=["type"]
        )
        for type_, timing in list(m.request_seconds.items()):
            durations.add_metric([type_], timing.buckets(), timing.sum)
        yield durations
        commits = HistogramMetricFamily(
            "sync_storage_commit_seconds",
            "Durable writes: until storage committed them (or, SQLite, logged them).",
        )
        commits.add_metric([], m.commit_seconds.buckets(), m.commit_seconds.sum)
        yield commits
        connections = GaugeMetricFamily(
            "sync_connections", "Realtime connections open.", labels=["protocol"]
        )
        for protocol in ("native", "twilsock"):
            connections.add_metric([protocol], m.connections[protocol])
        yield connections
        yield GaugeMetricFamily(
            "sync_subscriptions",
            "Subscriptions of the open connections.",
            value=sum(s.subscription_count for s in list(m.sessions)),
        )
        yield GaugeMetricFamily(
            "sync_outbox_frames",
            "Frames queued for slow clients.",
            value=sum(o.queued_frames for o in list(m.outboxes)),
        )
        yield CounterMetricFamily(
            "sync_slow_consumer_disconnects",
            "Clients dropped for falling too far behind (4008).",
            value=m.slow_consumer_disconnects,
        )
        broker = m.broker
        yield CounterMetricFamily(
            "sync_deliveries",
            "Events handed to subscribed connections.",
            value=broker.delivered if broker else 0,
        )
        yield CounterMetricFamily(
            "sync_broker_reconnects",
            "Reconnections to the other nodes.",
            value=broker.reconnects if broker else 0,
        )
        yield CounterMetricFamily(
            "sync_broker_gap_repairs",
            "Gaps in the event stream repaired from storage.",
            value=broker.repairs if broker else 0,
        )
        hooks = m.webhooks
        deliveries = CounterMetricFamily(
            "sync_webhook_deliveries", "Webhook deliveries by outcome.", labels=["result"]
        )
        for result, value in (
            ("delivered", hooks.delivered if hooks else 0),
            ("failed", hooks.failed if hooks else 0),
            ("dropped", hooks.dropped if hooks else 0),
        ):
            deliveries.add_metric([result], value)
        yield deliveries
        yield GaugeMetricFamily(
            "sync_webhook_queue", "Webhook deliveries pending.", value=hooks.pending if hooks else 0
        )
