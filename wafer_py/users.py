"""The user a view sees, the same in every framework: :class:`WaferUser` or
:class:`AnonymousUser`.

Flask's ``current_user`` and Starlette's ``request.user`` are one of these two. The names
are the ones Flask-Login and Starlette agree on (``is_authenticated``, ``display_name``,
``identity``), plus Wafer's own (``openid``, ``user``, ``userinfo()``). Starlette needs no
base class: ``request.user`` and ``@requires`` only read the scope, so this module imports
no framework.
"""

from __future__ import annotations

from typing import Any, Final

from .auth import Authenticated
from .models import Session, User

__all__ = ["WaferUser", "AnonymousUser", "ANONYMOUS_USER"]


class WaferUser:
    """A request with a valid Wafer session: who it is (``user``) and which ``session``."""

    __slots__ = ("authenticated",)

    def __init__(self, authenticated: Authenticated) -> None:
        self.authenticated = authenticated

    def __repr__(self) -> str:
        # The openid only: no session id, no profile, no phone.
        return f"WaferUser(openid={self.openid!r})"

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def openid(self) -> str:
        return self.authenticated.openid

    @property
    def display_name(self) -> str:
        """The WeChat nickname the user shared, or ``""``."""
        return self.authenticated.user.nickname

    @property
    def identity(self) -> str:
        """Starlette's name for the unique id: the openid."""
        return self.authenticated.openid

    @property
    def user(self) -> User:
        """The stored :class:`~wafer_py.models.User` (profile, unionid, phone)."""
        return self.authenticated.user

    @property
    def session(self) -> Session:
        return self.authenticated.session

    def userinfo(self) -> dict[str, Any]:
        """The user as the Wafer clients expect it (``{"openId", "nickName", ...}``)."""
        return self.authenticated.user.userinfo()


class AnonymousUser:
    """A request without a valid session: the same attributes as :class:`WaferUser`, empty.

    It is falsy, so ``if current_user:`` keeps meaning "logged in" (as when Flask's
    ``current_user`` stood for ``None``); test ``is_authenticated`` in new code.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "AnonymousUser()"

    def __bool__(self) -> bool:
        return False

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def openid(self) -> None:
        return None

    @property
    def display_name(self) -> str:
        return ""

    @property
    def identity(self) -> str:
        return ""

    @property
    def user(self) -> None:
        return None

    @property
    def session(self) -> None:
        return None

    def userinfo(self) -> dict[str, Any]:
        return {}


#: The one :class:`AnonymousUser` (it holds nothing).
ANONYMOUS_USER: Final = AnonymousUser()
