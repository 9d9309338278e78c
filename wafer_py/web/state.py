"""OAuth ``state`` values that are signed, timed, single-use and bound to one browser.

A load balancer may send the callback to another instance, so the state carries its own
proof rather than pointing at server memory:

* a random 96-bit nonce, and a digest binding it to one value (the page to return to);
* a digest of the browser's nonce (a random value the browser that started the login
  holds in a cookie), so the callback can tell whether the same browser came back; a
  state issued without one matches no browser;
* signed with itsdangerous' :class:`~itsdangerous.TimestampSigner` (HMAC-SHA256, keyed by
  the server's secret keys, several for rotation), which adds the time of issue;
* the signed ASCII token re-encoded in base62, because WeChat accepts only
  ``[A-Za-z0-9]{1,128}`` (about 103 characters here).

:meth:`OAuthStateSigner.verify` refuses a garbled, tampered or expired state and one bound
to another value; :meth:`OAuthStateSigner.spend` refuses one seen before, by claiming its
nonce in the shared session store until the state would have expired anyway;
:meth:`StateClaims.started_by` says whether a browser nonce is the one the state was
issued for. WeChat's in-app browser may drop cookies: a state whose browser does not come
back with it still verifies, and the caller decides (:mod:`wafer_py.web.login` asks the
user to confirm).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode

from ..crypto import Keyring
from ..exceptions import InvalidState, StateExpired, StateReplayed
from ..stores.entries import EntryStore

__all__ = [
    "ClockedSigner",
    "OAuthStateSigner",
    "StateClaims",
    "b62encode",
    "b62decode",
    "browser_digest",
]

_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_B62_INDEX = {c: i for i, c in enumerate(_B62)}
_MAX_STATE = 128
_NONCE_BYTES = 12
_BINDING_BYTES = 8
_BROWSER_BYTES = 8
_NO_BROWSER = bytes(_BROWSER_BYTES)


def b62encode(data: bytes) -> str:
    """``data`` in base62 (``[0-9A-Za-z]``); a marker byte keeps leading zero bytes."""
    number = int.from_bytes(b"\x01" + data, "big")
    digits: list[str] = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_B62[rest])
    return "".join(reversed(digits))


def b62decode(text: str) -> bytes:
    """The inverse of :func:`b62encode`. Raises ``ValueError`` for anything else."""
    number = 0
    for char in text:
        index = _B62_INDEX.get(char)
        if index is None:
            raise ValueError("not base62")
        number = number * 62 + index
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    if not raw or raw[0] != 1:
        raise ValueError("not made by b62encode")
    return raw[1:]


class ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer, telling the time by an injected ``clock``."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock())


def browser_digest(browser_nonce: str) -> bytes:
    """The digest of a browser nonce that a state carries (never the nonce itself)."""
    if not browser_nonce:
        return _NO_BROWSER
    digest = hashlib.sha256(b"wafer_py browser nonce\x00" + browser_nonce.encode()).digest()
    return digest[:_BROWSER_BYTES]


@dataclass(frozen=True)
class StateClaims:
    """What a verified state says: its nonce (hex), when it was issued, and the digest of
    the browser nonce it was issued for (zeros: none)."""

    nonce: str
    issued_at: int
    browser: bytes = field(default=_NO_BROWSER, repr=False)

    def started_by(self, browser_nonce: str | None) -> bool:
        """Whether ``browser_nonce`` (the cookie the callback came with) started this state.

        A missing nonce, or a state issued for none, is never a match.
        """
        if not browser_nonce or self.browser == _NO_BROWSER:
            return False
        return hmac.compare_digest(self.browser, browser_digest(browser_nonce))


def _canonical(signed: bytes) -> bool:
    """Whether every base64 part of a signed token is in its one canonical spelling.

    Base64 ignores the spare low bits of a final character, so without this check a
    changed last character could still verify: a tampered state must be refused.
    """
    try:
        return all(base64_encode(base64_decode(part)) == part for part in signed.split(b"."))
    except BadData:
        return False


def _binding(bound: str) -> bytes:
    return hashlib.sha256(b"wafer_py state binding\x00" + bound.encode()).digest()[:_BINDING_BYTES]


class OAuthStateSigner:
    """Issue and check OAuth ``state`` values.

    ``secret_keys`` are newest first (as in :class:`~wafer_py.config.WaferConfig`): the
    newest signs, all verify. ``max_age`` is how long a state stays good (seconds: long
    enough to read a consent page). ``clock`` returns seconds.

    Example::

        signer = OAuthStateSigner(["server secret"])
        state = signer.issue(bound="/web/profile", browser=nonce_cookie)
        claims = signer.verify(state, bound="/web/profile")   # or InvalidState...
        signer.spend(claims, store)                          # or StateReplayed
        claims.started_by(cookie_at_callback)                # same browser?
    """

    def __init__(
        self,
        secret_keys: Keyring | Sequence[str | bytes],
        *,
        max_age: int = 600,
        clock: Callable[[], float] = time.time,
        salt: str = "wafer_py.oauth-state",
    ) -> None:
        try:
            keys = Keyring.of(secret_keys)
        except ValueError:
            raise ValueError("at least one secret key is needed to sign OAuth states") from None
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self.max_age = max_age
        self.clock = clock
        self._signer = ClockedSigner(
            keys.oldest_first(), salt=salt, digest_method=hashlib.sha256, clock=clock
        )

    def __repr__(self) -> str:
        return f"OAuthStateSigner(keys={len(self._signer.secret_keys)}, max_age={self.max_age})"

    def issue(self, bound: str = "", browser: str = "") -> str:
        """A fresh state, bound to ``bound`` (e.g. the path to return to) and issued for
        the browser holding the nonce ``browser`` (empty: for no browser)."""
        payload = secrets.token_bytes(_NONCE_BYTES) + _binding(bound) + browser_digest(browser)
        value = base64.urlsafe_b64encode(payload).rstrip(b"=")
        state = b62encode(self._signer.sign(value))
        assert len(state) <= _MAX_STATE
        return state

    def verify(self, state: str | None, bound: str = "") -> StateClaims:
        """Check ``state``'s signature, age and binding; return its claims.

        Raises :class:`~wafer_py.exceptions.InvalidState` (missing, garbled, tampered,
        bound to something else) or :class:`~wafer_py.exceptions.StateExpired`.
        """
        if not state:
            raise InvalidState("the login link has no state; please start again")
        if len(state) > _MAX_STATE:
            raise InvalidState()
        try:
            signed = b62decode(state)
            if not _canonical(signed):
                raise InvalidState()
            value, issued_at = self._signer.unsign(
                signed, max_age=int(self.max_age), return_timestamp=True
            )
            payload = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
        except SignatureExpired:
            raise StateExpired() from None
        except (BadData, ValueError, binascii.Error):
            raise InvalidState() from None
        binding_end = _NONCE_BYTES + _BINDING_BYTES
        if len(payload) != binding_end + _BROWSER_BYTES or not hmac.compare_digest(
            payload[_NONCE_BYTES:binding_end], _binding(bound)
        ):
            raise InvalidState()
        return StateClaims(
            payload[:_NONCE_BYTES].hex(), int(issued_at.timestamp()), payload[binding_end:]
        )

    def spend(self, claims: StateClaims, store: EntryStore) -> None:
        """Use the state once: a second call for the same nonce raises StateReplayed.

        The nonce is claimed with the store's lock (an atomic set-if-absent shared by every
        instance); the claim lapses when the state would have expired anyway. Each attempt
        claims under a fresh owner, since a lock's owner may take it again.
        """
        now = self.clock()
        remaining = self.max_age - (now - claims.issued_at)
        taken = store.acquire_lock(
            f"oauth-state:{claims.nonce}", secrets.token_hex(8), ttl=max(remaining, 0) + 1, now=now
        )
        if not taken:
            raise StateReplayed()
