"""Cryptography: WeChat's encryptedData, random tokens, keyed skey hashes, sealed keys.

* :func:`decrypt_data` opens ``encryptedData`` exactly as WeChat documents it
  (AES-128-CBC, PKCS#7, key and IV base64) and checks it strictly: whole blocks, real
  PKCS#7 padding, UTF-8 JSON, the watermark's appid, optionally the openId and the
  watermark's age. Each failure is its own :class:`~wafer_py.exceptions.DecryptError`.
* :func:`encrypt_data` is the other direction, as WeChat's servers do it; the fake WeChat
  and tests use it.
* :class:`Keyring` holds the server's secret keys, newest first (the newest signs or
  seals, every one verifies or opens), and derives a key per purpose from each.
* :class:`SecretBox` takes, from a keyring, the keyed hash under which skeys are stored
  and the AES-GCM key that seals each ``session_key`` at rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .exceptions import (
    MalformedEncryptedData,
    OpenIdMismatch,
    StaleSessionKey,
    StaleWatermark,
    WrongAppId,
)

__all__ = [
    "decrypt_data",
    "encrypt_data",
    "new_session_id",
    "new_skey",
    "new_session_key",
    "Keyring",
    "SecretBox",
    "hmac_signature",
]

logger = logging.getLogger("wafer_py")

_BLOCK = 16


def _b64decode(value: str, what: str) -> bytes:
    # A '+' that crossed a URL decoder arrives as a space; put it back.
    text = value.strip().replace(" ", "+")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEncryptedData(f"{what} is not valid base64") from None


def _unpad(data: bytes) -> bytes:
    pad = data[-1]
    if pad < 1 or pad > _BLOCK or data[-pad:] != bytes([pad]) * pad:
        raise StaleSessionKey()
    return data[:-pad]


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def decrypt_data(
    session_key: str,
    encrypted_data: str,
    iv: str | None,
    *,
    appid: str,
    openid: str | None = None,
    max_age: float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Decrypt and check WeChat ``encryptedData``; return the JSON object inside.

    ``iv=None`` is the 2016 format (``encryptData`` with no IV), decrypted with IV = key.
    ``openid``, when given, must equal the payload's ``openId`` if it has one (payloads of
    ``getUserProfile`` and phone numbers carry none). ``max_age`` (seconds) bounds the
    watermark's age.

    Raises :class:`~wafer_py.exceptions.MalformedEncryptedData`,
    :class:`~wafer_py.exceptions.StaleSessionKey`, :class:`~wafer_py.exceptions.WrongAppId`,
    :class:`~wafer_py.exceptions.OpenIdMismatch` or
    :class:`~wafer_py.exceptions.StaleWatermark`.
    """
    key = _b64decode(session_key, "session_key")
    if len(key) != _BLOCK:
        raise MalformedEncryptedData("session_key must decode to 16 bytes")
    iv_bytes = key if iv is None else _b64decode(iv, "iv")
    if len(iv_bytes) != _BLOCK:
        raise MalformedEncryptedData("iv must decode to 16 bytes")
    data = _b64decode(encrypted_data, "encryptedData")
    if not data or len(data) % _BLOCK:
        raise MalformedEncryptedData("encryptedData is not a whole number of AES blocks")

    plain = _unpad(_aes_cbc(key, iv_bytes, data, encrypt=False))
    try:
        payload = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        # Garbage that happens to end in valid padding: the key is wrong.
        raise StaleSessionKey() from None
    if not isinstance(payload, dict):
        raise StaleSessionKey()

    watermark = payload.get("watermark")
    if iv is not None or watermark is not None:
        if not isinstance(watermark, dict) or watermark.get("appid") != appid:
            raise WrongAppId()
        if max_age is not None:
            stamp = watermark.get("timestamp")
            current = time.time() if now is None else now
            if not isinstance(stamp, (int, float)) or current - stamp > max_age:
                raise StaleWatermark()
    found = payload.get("openId")
    if openid is not None and found is not None and found != openid:
        raise OpenIdMismatch()
    return payload


def encrypt_data(
    session_key: str,
    payload: Mapping[str, Any],
    *,
    appid: str,
    timestamp: int | None = None,
    iv: bytes | None = None,
) -> tuple[str, str]:
    """Encrypt ``payload`` the way WeChat builds ``encryptedData``; return ``(data, iv)``.

    A ``watermark`` of ``{"timestamp", "appid"}`` is added, as WeChat does.
    """
    key = base64.b64decode(session_key)
    iv_bytes = os.urandom(_BLOCK) if iv is None else iv
    body = dict(payload)
    body["watermark"] = {
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        "appid": appid,
    }
    plain = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    pad = _BLOCK - len(plain) % _BLOCK
    data = _aes_cbc(key, iv_bytes, plain + bytes([pad]) * pad, encrypt=True)
    return base64.b64encode(data).decode("ascii"), base64.b64encode(iv_bytes).decode("ascii")


def hmac_signature(session_key: str, message: str = "") -> str:
    """WeChat's login-state signature: HMAC-SHA256 keyed by the session_key *string*."""
    return hmac.new(session_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def new_session_id() -> str:
    """A session id: 128 random bits, hex (header-safe ASCII)."""
    return secrets.token_hex(16)


def new_skey() -> str:
    """A session secret: 192 random bits, hex (header-safe ASCII)."""
    return secrets.token_hex(24)


def new_session_key() -> str:
    """A random WeChat-style session_key: base64 of 16 bytes (24 characters)."""
    return base64.b64encode(secrets.token_bytes(_BLOCK)).decode("ascii")


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class Keyring:
    """The server's secret keys, newest first: the one order every user of keys takes.

    Rotate by putting a new key in front and keeping the old ones until what they
    signed or sealed has expired: the newest signs and seals, every key verifies and
    opens. Empty keys are dropped; a keyring with none left is refused (``ValueError``):
    :meth:`random` is the one way to a made-up key, and says so in :attr:`generated`.
    Its ``repr`` counts keys and never shows one.

    Example::

        ring = Keyring(["new key ...", "old key ..."])
        ring.newest            # b"new key ..."
        ring.oldest_first()    # itsdangerous' order (it signs with the last)
        ring.derive(b"purpose v1")  # one 32-byte key per secret, newest first
    """

    __slots__ = ("_keys", "generated")

    def __init__(self, keys: Iterable[str | bytes], *, generated: bool = False) -> None:
        self._keys = tuple(k.encode() if isinstance(k, str) else bytes(k) for k in keys if k)
        if not self._keys:
            raise ValueError("a keyring needs at least one non-empty secret key")
        #: Whether the key was made up by :meth:`random` (not configured).
        self.generated = generated

    @classmethod
    def random(cls) -> Keyring:
        """A keyring of one random key, with a warning: what it signs or seals lasts only
        as long as the process and no other process can check it."""
        logger.warning(
            "wafer_py: no secret key configured (WAFER_SECRET_KEY); using a random one. "
            "Sessions will not survive a restart nor be shared between processes."
        )
        return cls([secrets.token_hex(32)], generated=True)

    @classmethod
    def of(cls, keys: Keyring | Iterable[str | bytes]) -> Keyring:
        """``keys`` as a keyring (a keyring is returned as it is)."""
        return keys if isinstance(keys, Keyring) else cls(keys)

    @property
    def newest(self) -> bytes:
        """The key that signs and seals."""
        return self._keys[0]

    def __iter__(self) -> Iterator[bytes]:
        """The keys, newest first."""
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def oldest_first(self) -> list[bytes]:
        """The keys oldest first, the order itsdangerous takes (it signs with the last)."""
        return list(reversed(self._keys))

    def rotated(self, new_key: str | bytes, *, keep: int | None = None) -> Keyring:
        """A keyring with ``new_key`` in front of these, keeping at most ``keep`` keys."""
        keys = (new_key, *self._keys)
        return Keyring(keys if keep is None else keys[:keep])

    def derive(self, purpose: bytes) -> list[bytes]:
        """A 32-byte key for ``purpose`` from each secret (HKDF-SHA256), newest first."""
        return [_derive(k, purpose) for k in self._keys]

    def __repr__(self) -> str:
        return f"Keyring(keys={len(self._keys)}, generated={self.generated})"


class SecretBox:
    """Keys derived from the server's secret keys, newest first.

    * ``hash_skey`` gives the keyed hash (HMAC-SHA256) under which an skey is stored;
      ``skey_hashes`` gives it under every key, so sessions made before a rotation
      still validate.
    * ``seal`` / ``unseal`` protect a ``session_key`` at rest with AES-GCM under the newest
      key; sealed values name their key, so older ones still open after a rotation.

    ``scope`` separates the skey hashes of several users of one key: WaferAuth passes its
    AppID, so two mini-programs sharing a store and a key never accept each other's
    skeys (the hash of one app's skey names no session under the other's). An empty
    scope gives the unscoped hash.

    ``secret_keys`` is a :class:`Keyring` or the keys for one. Without keys a random one
    is made (:meth:`Keyring.random`, with a warning): sessions then live only as long as
    the process and cannot be shared between processes.
    """

    def __init__(
        self, secret_keys: Keyring | Iterable[str | bytes] = (), *, scope: str = ""
    ) -> None:
        if not isinstance(secret_keys, Keyring):
            secret_keys = [k for k in secret_keys if k]
        keyring = Keyring.of(secret_keys) if secret_keys else Keyring.random()
        self.keyring = keyring
        self.generated = keyring.generated
        # One HMAC keyed per secret, copied for each hash: the key schedule is done once
        # here instead of on every request (hmac.digest redoes it on each call).
        purpose = b"wafer_py skey hash v1"
        if scope:
            purpose += b" for " + scope.encode()
        self._hashers = [hmac.new(k, digestmod=hashlib.sha256) for k in keyring.derive(purpose)]
        self._seal_keys: dict[str, AESGCM] = {}
        self._seal_order: list[str] = []
        for seal_key in keyring.derive(b"wafer_py session_key seal v1"):
            kid = hashlib.sha256(seal_key).hexdigest()[:8]
            self._seal_keys[kid] = AESGCM(seal_key)
            self._seal_order.append(kid)

    def __repr__(self) -> str:
        return f"SecretBox(keys={len(self._hashers)}, generated={self.generated})"

    def hash_skey(self, skey: str) -> str:
        """The keyed hash of ``skey`` under the newest key (hex)."""
        hasher = self._hashers[0].copy()
        hasher.update(skey.encode())
        return hasher.hexdigest()

    def skey_hashes(self, skey: str) -> list[str]:
        """The keyed hash of ``skey`` under every key, newest first."""
        data = skey.encode()
        hashes = []
        for keyed in self._hashers:
            hasher = keyed.copy()
            hasher.update(data)
            hashes.append(hasher.hexdigest())
        return hashes

    def check_skey(self, skey: str, stored_hash: str) -> bool:
        """Constant-time check of ``skey`` against a stored hash, under every key."""
        ok = False
        for candidate in self.skey_hashes(skey):
            ok |= hmac.compare_digest(candidate, stored_hash)
        return ok

    def seal(self, plaintext: str, *, context: str = "") -> str:
        """Seal ``plaintext`` under the newest key; ``context`` is bound to it (AAD)."""
        kid = self._seal_order[0]
        nonce = os.urandom(12)
        sealed = self._seal_keys[kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"g1.{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def unseal(self, token: str, *, context: str = "") -> str:
        """Open a value made by :meth:`seal`. Raises ``ValueError`` if it does not open."""
        try:
            version, kid, body = token.split(".", 2)
            box = self._seal_keys[kid]
            raw = base64.urlsafe_b64decode(body)
            if version != "g1":
                raise ValueError
            return box.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except Exception:
            raise ValueError("sealed value does not open under any configured key") from None
