"""The Django user of a WeChat login, and an auth backend for ``django.contrib.auth``.

:func:`get_django_user` maps a validated Wafer identity to the Django user linked to its
WeChat account (:class:`~wafer_py.django.models.WeChatAccount`), creating both on the
first login. :class:`WaferBackend` lets a project call ``django.contrib.auth.login`` with
that identity when it wants Django's own sessions too; the Wafer session (the skey) stays
in the wafer_py store either way.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from ..auth import Authenticated
from ..models import User
from .models import WeChatAccount

__all__ = ["WaferBackend", "get_django_user", "wafer_environ", "wafer_setting"]


def wafer_setting(name: str) -> str | None:
    """A ``WAFER_*`` setting: ``django.conf.settings`` first, then the environment."""
    value = getattr(settings, name, None)
    if value is None or value == "":
        value = os.environ.get(name) or None
    return None if value is None else str(value)


def wafer_environ() -> dict[str, str]:
    """The ``WAFER_*`` names :meth:`WaferConfig.from_env <wafer_py.config.WaferConfig.from_env>`
    reads, each from the Django settings, else the environment."""
    names = (
        "WAFER_APPID", "WAFER_APP_SECRET", "WAFER_WECHAT_API_BASE", "WAFER_WECHAT_OPEN_BASE",
        "WAFER_STORE_URL", "WAFER_SESSION_TTL", "WAFER_SESSION_MAX_AGE", "WAFER_SECRET_KEY",
        "WAFER_LOGIN_PATH", "WAFER_MAX_CONCURRENT_LOGINS", "WAFER_MAX_QUEUED_LOGINS",
        "WAFER_LOGIN_TIMEOUT", "WAFER_OAUTH_APPID", "WAFER_OAUTH_APP_SECRET",
        "WAFER_SUPERSEDED_TTL",
    )  # fmt: skip
    environ = {}
    for name in names:
        value = wafer_setting(name)
        if value is not None:
            environ[name] = value
    return environ


def _appid(appid: str | None) -> str:
    found = appid or wafer_setting("WAFER_APPID")
    if not found:
        raise ImproperlyConfigured(
            "WAFER_APPID is not set (in the Django settings or the environment): "
            "the WeChat account of a login is its AppID and openid"
        )
    return found


def _account_fields(user: User) -> dict[str, str]:
    """What the account mirrors of the store's user (its profile as WeChat gave it)."""
    return {
        "unionid": user.unionid or "",
        "nickname": str(user.profile.get("nickName") or "")[:255],
        "avatar_url": str(user.profile.get("avatarUrl") or "")[:1024],
        "phone": user.phone or "",
    }


def _username(appid: str, openid: str, *, qualified: bool) -> str:
    # The openid alone reads best; with the AppID's digest when that name is taken (by
    # another mini-program's user of the same openid, or by a user of the project's own).
    name = f"wx_{openid}"
    if qualified:
        name += "_" + hashlib.sha256(appid.encode()).hexdigest()[:8]
    return name[:150]


def _create(appid: str, user: User, fields: dict[str, str]) -> WeChatAccount:
    """The account and its Django user, made together; a concurrent first login of the
    same account wins the unique constraint and this one reads its row."""
    model = get_user_model()
    username_field = cast(str, model.USERNAME_FIELD)
    for qualified in (False, True):
        try:
            with transaction.atomic():
                django_user = model(
                    **{username_field: _username(appid, user.openid, qualified=qualified)}
                )
                django_user.set_unusable_password()
                django_user.save()
                return WeChatAccount.objects.create(
                    user=django_user, appid=appid, openid=user.openid, **fields
                )
        except IntegrityError:
            found = _find(appid, user.openid)
            if found is not None:
                return found
    raise IntegrityError(
        f"no free username for the WeChat account {user.openid} of {appid}: "
        "wx_<openid> and its AppID-qualified form are both taken"
    )


def _find(appid: str, openid: str) -> WeChatAccount | None:
    account: WeChatAccount | None = (
        WeChatAccount.objects.select_related("user").filter(appid=appid, openid=openid).first()
    )
    return account


def get_django_user(identity: Authenticated, *, appid: str | None = None) -> Any:
    """The Django user of a validated Wafer login, created on its first call.

    The user is linked to the WeChat account ``appid`` (default ``WAFER_APPID``) +
    ``identity.user.openid`` by a :class:`~wafer_py.django.models.WeChatAccount`; a new
    user has the username ``wx_<openid>`` and no usable password (it logs in through
    WeChat only). The account's unionid, nickname, avatar and phone follow the store's
    user: they are saved when they changed. Safe against concurrent first logins (the
    unique (AppID, openid) constraint decides, the others read the winner's row).
    """
    appid = _appid(appid)
    fields = _account_fields(identity.user)
    account = _find(appid, identity.user.openid)
    if account is None:
        account = _create(appid, identity.user, fields)
    else:
        changed = [name for name, value in fields.items() if getattr(account, name) != value]
        if changed:
            for name in changed:
                setattr(account, name, fields[name])
            account.save(update_fields=[*changed, "updated"])
    return account.user


class WaferBackend(BaseBackend):
    """``django.contrib.auth`` backend for Wafer logins:
    ``authenticate(request, identity=request.wafer.identity)`` returns the linked Django
    user (see :func:`get_django_user`), so ``django.contrib.auth.login`` can give the
    WeChat user a Django session as well. It checks no password, and answers ``None`` for
    anything but a validated :class:`~wafer_py.auth.Authenticated` (so other backends
    are tried) and for inactive users.

    ``AUTHENTICATION_BACKENDS = [..., "wafer_py.django.backends.WaferBackend"]``
    """

    def authenticate(
        self, request: HttpRequest | None, identity: Authenticated | None = None, **kwargs: Any
    ) -> AbstractBaseUser | None:
        if not isinstance(identity, Authenticated):
            return None
        user: AbstractBaseUser = get_django_user(identity)
        return user if getattr(user, "is_active", True) else None

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        model = get_user_model()
        try:
            user: AbstractBaseUser = model._default_manager.get(pk=user_id)
        except (model.DoesNotExist, ValueError, TypeError):
            return None
        return user if getattr(user, "is_active", True) else None
