"""The values WaferAuth takes and gives: :class:`Credentials` read from a request, the
:class:`Authenticated` identity they prove, the :class:`LoginResult` of a new session.

Import them from :mod:`wafer_py.auth`, where their ``__module__`` (and so a repr, a pickle
or a type hint) points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from ..models import Session, User

__all__ = ["Credentials", "Authenticated", "LoginResult"]

# Credentials and Authenticated (and the protocol's RequestState) are made for every
# validated request: named tuples, immutable like frozen dataclasses, cost half as much
# to build.


class Credentials(NamedTuple):
    """Session credentials read from a request: v1 sends ``id`` and ``skey``, v2 ``skey``."""

    skey: str
    session_id: str | None = None

    def __repr__(self) -> str:  # the skey is a secret: never in a repr
        return f"Credentials(session_id={self.session_id!r})"

    @property
    def generation(self) -> Literal["v1", "v2"]:
        return "v1" if self.session_id is not None else "v2"


class Authenticated(NamedTuple):
    """A validated request: who it is and which session it used."""

    user: User
    session: Session
    generation: Literal["v1", "v2"] = "v2"

    @property
    def openid(self) -> str:
        return self.user.openid


@dataclass(frozen=True)
class LoginResult:
    """A new session. ``skey`` is shown to the client once and never stored in the clear."""

    user: User
    session: Session
    skey: str = field(repr=False)
    created: bool = False  # whether this login registered the user

    @property
    def session_id(self) -> str:
        return self.session.id


for _value_type in (Credentials, Authenticated, LoginResult):
    _value_type.__module__ = "wafer_py.auth"
del _value_type
