"""Hooks for watching wafer_py at work: logins, validations, calls to WeChat and to the
store, the login queue, access_token refreshes.

The core calls an :class:`Observer`; the default, :data:`NO_OBSERVER`, does nothing, so
the core never imports a metrics library. :mod:`wafer_py.metrics` is the Prometheus one
(``metrics="prometheus"`` in :class:`~wafer_py.config.WaferConfig`, ``WAFER_METRICS``).

Every label an observer is given comes from wafer_py's own constants: an outcome, an
error's ``reason`` (a class attribute), a WeChat API path without its query, a store
method's name. Never an openid, a code, an skey, a URL's query or a secret.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Observer", "NullObserver", "NO_OBSERVER", "observer_for", "METRICS_CHOICES"]

#: What ``metrics`` (``WAFER_METRICS``) may be: nothing (or ``"none"``) or ``"prometheus"``.
METRICS_CHOICES = ("none", "prometheus")


class Observer(Protocol):
    """What wafer_py tells an observer. Each method must be quick and must not raise: it
    runs inside the request it reports on."""

    def login(self, outcome: str, reason: str, seconds: float) -> None:
        """A login ended: ``outcome`` is ``ok``, ``refused`` (answered 4xx: a bad code, a
        rate limit) or ``failed`` (5xx: logins busy, WeChat or the store down); ``reason``
        is the error's (``none`` for ``ok``)."""

    def validation(self, outcome: str, reason: str) -> None:
        """A request's session headers were checked: ``valid``, ``invalid`` (unknown,
        expired, malformed) or ``error`` (the store down); ``reason`` as for a login."""

    def wechat_call(self, api: str, outcome: str, seconds: float) -> None:
        """One call to WeChat's ``api`` (its path): ``ok``, ``error`` (WeChat answered
        an errcode) or ``unavailable`` (no answer, HTTP 5xx, a timeout)."""

    def store_call(self, op: str, seconds: float) -> None:
        """One call of the session store's method ``op`` (failed or not)."""

    def login_queue(self, change: int) -> None:
        """Logins waiting for a slot went up or down by ``change``."""

    def token_refresh(self, outcome: str) -> None:
        """The shared access_token was fetched from WeChat: ``refreshed``, ``forced``,
        ``unchanged`` (WeChat handed back the token it refused) or ``failed``."""


class NullObserver:
    """An observer that records nothing (subclass it to implement only some hooks)."""

    def login(self, outcome: str, reason: str, seconds: float) -> None:
        return None

    def validation(self, outcome: str, reason: str) -> None:
        return None

    def wechat_call(self, api: str, outcome: str, seconds: float) -> None:
        return None

    def store_call(self, op: str, seconds: float) -> None:
        return None

    def login_queue(self, change: int) -> None:
        return None

    def token_refresh(self, outcome: str) -> None:
        return None


#: The default: nothing is recorded (the hot paths test ``is NO_OBSERVER`` and skip timing).
NO_OBSERVER: Observer = NullObserver()


def observer_for(metrics: str | None) -> Observer:
    """The observer a ``metrics`` setting names. ``"prometheus"`` needs the
    ``prometheus_client`` package: without it this raises ``ImportError`` naming the
    setting and the extra, so a misconfigured app stops at start."""
    if not metrics or metrics == "none":
        return NO_OBSERVER
    if metrics != "prometheus":
        raise ValueError(f"metrics (WAFER_METRICS) must be one of {', '.join(METRICS_CHOICES)}")
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ImportError(
            "metrics (WAFER_METRICS) is 'prometheus' but prometheus_client is not installed: "
            "install wafer_py with its metrics extra (pip install 'wafer-session[metrics]')"
        ) from None
    from .metrics import default_observer

    return default_observer()
