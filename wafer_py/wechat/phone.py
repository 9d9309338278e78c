"""A user's phone number, as WeChat gives it, and the request that carries its code.

WeChat gives a phone number two ways, with the same fields:

* the current flow: the client's ``getPhoneNumber`` button yields a one-time ``code``,
  which the server exchanges at ``/wxa/business/getuserphonenumber`` (``phone_info``,
  where ``countryCode`` is a number);
* the legacy flow: ``encryptedData`` + ``iv`` decrypted with the user's ``session_key``
  (``countryCode`` is a string there).

:meth:`PhoneNumber.from_wechat` reads both. The number is personal data: it is masked in
``repr`` and never logged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..exceptions import BadBody, WeChatError

__all__ = ["PhoneNumber", "phone_code_from_body", "mask_phone"]

_DIGITS = re.compile(r"\d+")
_CODE = re.compile(r"[A-Za-z0-9._~+/=-]{1,256}")


def mask_phone(number: str) -> str:
    """``13800138000`` -> ``138****8000``: enough to recognise, not to call."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


@dataclass(frozen=True)
class PhoneNumber:
    """A phone number bound to a WeChat account.

    ``phone_number`` is WeChat's ``phoneNumber`` (with the country code for numbers
    outside China), ``pure_phone_number`` the number without it, ``country_code`` the
    calling code as digits (``"86"``). :attr:`e164` is the canonical form kept on the user.
    """

    phone_number: str
    pure_phone_number: str
    country_code: str

    def __repr__(self) -> str:
        return (
            f"PhoneNumber(phone_number={mask_phone(self.phone_number)!r}, "
            f"country_code={self.country_code!r})"
        )

    @property
    def e164(self) -> str:
        """``+<country code><number>``, e.g. ``+8613800138000``."""
        return f"+{self.country_code}{''.join(_DIGITS.findall(self.pure_phone_number))}"

    def to_json(self) -> dict[str, str]:
        """WeChat's field names: ``phoneNumber``, ``purePhoneNumber``, ``countryCode``."""
        return {
            "phoneNumber": self.phone_number,
            "purePhoneNumber": self.pure_phone_number,
            "countryCode": self.country_code,
        }

    @classmethod
    def from_wechat(cls, data: Any) -> PhoneNumber:
        """Read ``phone_info`` (current API) or a decrypted legacy payload.

        Raises :class:`~wafer_py.exceptions.WeChatError` if a field is missing.
        """
        if not isinstance(data, dict):
            raise WeChatError("WeChat's phone number answer has no phone_info")
        number, pure = data.get("phoneNumber"), data.get("purePhoneNumber")
        country = data.get("countryCode")
        if isinstance(country, int) and not isinstance(country, bool):
            country = str(country)
        if not (
            isinstance(number, str)
            and number
            and isinstance(pure, str)
            and pure
            and isinstance(country, str)
            and country.isdigit()
        ):
            raise WeChatError("WeChat's phone number answer is incomplete")
        return cls(number, pure, country)


def phone_code_from_body(body: bytes) -> str:
    """The ``code`` of a ``{"code": "..."}`` JSON request body.

    Raises :class:`~wafer_py.exceptions.BadBody` (answered 400) for anything else.
    """
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise BadBody('the body must be JSON: {"code": "<getPhoneNumber code>"}') from None
    if not isinstance(data, dict):
        raise BadBody('the body must be a JSON object: {"code": "<getPhoneNumber code>"}')
    code = data.get("code")
    if not isinstance(code, str) or not code:
        raise BadBody('"code" (the getPhoneNumber code) is required')
    if not _CODE.fullmatch(code):
        raise BadBody('"code" is malformed')
    return code
