"""Prometheus metrics of wafer_py, through ``prometheus_client`` (the ``metrics`` extra).

:class:`PrometheusObserver` is an :class:`~wafer_py.observe.Observer`: turn it on with
``metrics="prometheus"`` (``WAFER_METRICS=prometheus``), or hand one to
``WaferAuth(observer=...)``. Serve the figures with :func:`asgi_app`, :func:`wsgi_app` or,
in a view, :func:`exposition`; each serves every process's figures when
``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn with several workers).

Label values come from small fixed sets (outcomes, error reasons, WeChat API paths, store
methods); one that does not look like one is recorded as ``other``. Each label set's
child is made once and kept, so a request costs no label lookup in prometheus_client.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_asgi_app,
    make_wsgi_app,
)
from prometheus_client import (
    exposition as _exposition,
)

__all__ = [
    "PrometheusObserver",
    "default_observer",
    "registry",
    "exposition",
    "asgi_app",
    "wsgi_app",
    "LOGIN_BUCKETS",
    "WECHAT_BUCKETS",
    "STORE_BUCKETS",
]

#: Seconds: a login is a WeChat round trip (tens of ms) plus the store; 5 s is the timeout.
LOGIN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WECHAT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: A store call is microseconds (memory) to a loopback round trip (about 100 us) or more.
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5)

_WORD = re.compile(r"[a-z0-9_]{1,48}")
_API = re.compile(r"/[A-Za-z0-9_/.-]{1,80}")


def _word(value: str) -> str:
    return value if _WORD.fullmatch(value) else "other"


def _api(value: str) -> str:
    path = value.partition("?")[0]
    return path if _API.fullmatch(path) else "other"


class PrometheusObserver:
    """Counters, histograms and a gauge in ``registry`` (default: prometheus_client's
    global one), named ``<namespace>_...``:

    - ``wafer_logins_total{outcome, reason}`` and ``wafer_login_seconds{outcome}``
    - ``wafer_validations_total{outcome, reason}``
    - ``wafer_wechat_call_seconds{api, outcome}``
    - ``wafer_store_call_seconds{op}``
    - ``wafer_login_queue_length`` (logins waiting for a slot, summed over processes)
    - ``wafer_token_refreshes_total{outcome}``

    Make one per registry: a second would register the same names again (ValueError).
    """

    def __init__(
        self, registry: CollectorRegistry | None = REGISTRY, *, namespace: str = "wafer"
    ) -> None:
        kw: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self.logins = Counter("logins", "Logins by outcome and reason", ["outcome", "reason"], **kw)
        self.login_seconds = Histogram(
            "login_seconds",
            "Time a login took, its wait for a slot included",
            ["outcome"],
            buckets=LOGIN_BUCKETS,
            **kw,
        )
        self.validations = Counter(
            "validations",
            "Requests whose session headers were checked, by outcome and reason",
            ["outcome", "reason"],
            **kw,
        )
        self.wechat_seconds = Histogram(
            "wechat_call_seconds",
            "Calls to WeChat's server APIs by API path and outcome",
            ["api", "outcome"],
            buckets=WECHAT_BUCKETS,
            **kw,
        )
        self.store_seconds = Histogram(
            "store_call_seconds",
            "Calls to the session store by method",
            ["op"],
            buckets=STORE_BUCKETS,
            **kw,
        )
        self.queue = Gauge(
            "login_queue_length",
            "Logins waiting for a slot",
            multiprocess_mode="livesum",
            **kw,
        )
        self.token_refreshes = Counter(
            "token_refreshes",
            "Fetches of the shared access_token from WeChat, by outcome",
            ["outcome"],
            **kw,
        )
        # Children by label values, made on first use (a race makes the same child twice).
        self._children: dict[tuple[str, ...], Any] = {}
        self._valid = self._child(self.validations, "v", "valid", "none")

    def _child(self, metric: Any, kind: str, *values: str) -> Any:
        key = (kind, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def login(self, outcome: str, reason: str, seconds: float) -> None:
        outcome, reason = _word(outcome), _word(reason)
        self._child(self.logins, "l", outcome, reason).inc()
        self._child(self.login_seconds, "ls", outcome).observe(seconds)

    def validation(self, outcome: str, reason: str) -> None:
        if outcome == "valid":
            self._valid.inc()  # the hot path: one call
            return
        self._child(self.validations, "v", _word(outcome), _word(reason)).inc()

    def wechat_call(self, api: str, outcome: str, seconds: float) -> None:
        self._child(self.wechat_seconds, "w", _api(api), _word(outcome)).observe(seconds)

    def store_call(self, op: str, seconds: float) -> None:
        children = self._children
        child = children.get(("s", op))
        if child is None:
            child = children[("s", op)] = self.store_seconds.labels(_word(op))
        child.observe(seconds)

    def login_queue(self, change: int) -> None:
        self.queue.inc(change)

    def token_refresh(self, outcome: str) -> None:
        self._child(self.token_refreshes, "t", _word(outcome)).inc()


_default: PrometheusObserver | None = None
_default_lock = threading.Lock()


def default_observer() -> PrometheusObserver:
    """The process's observer in prometheus_client's global registry (made once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PrometheusObserver()
        return _default


def registry() -> CollectorRegistry:
    """What to serve: the global registry, or with ``PROMETHEUS_MULTIPROC_DIR`` set, a
    registry that adds up the files every worker process writes there."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """The metrics as text for a ``/metrics`` view: the body and its content type (the
    OpenMetrics format if ``accept``, the request's Accept header, asks for it)."""
    encoder, content_type = _exposition.choose_encoder(accept or "")
    return encoder(registry()), content_type


def asgi_app() -> Callable[..., Any]:
    """An ASGI app serving the metrics (mount it at ``/metrics``)."""
    return make_asgi_app(registry())


def wsgi_app() -> Callable[..., Any]:
    """A WSGI app serving the metrics (mount it at ``/metrics``)."""
    return make_wsgi_app(registry())
