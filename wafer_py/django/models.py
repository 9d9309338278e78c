"""The Django models of wafer_py.

:class:`WeChatAccount` links a Django user to the WeChat account (AppID + openid) it logs
in with; it holds the profile shown in the admin and never a secret (no skey, no
session_key: those stay in the session store, hashed and sealed).

The ``Stored*`` models are the tables of the ``django://`` session store
(:class:`~wafer_py.stores.django.DjangoStore`): the same records as the SQL store's, on
the project's own database. Their tables are ``wafer_dj_*``, so they never meet the
``wafer_*`` tables a ``postgresql://`` store may keep in the same database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models

__all__ = ["WeChatAccount", "StoredEntry", "StoredLock", "StoredSession", "StoredUser"]


class WeChatAccount(models.Model):
    """The WeChat account of a Django user: one per user, one per (AppID, openid)."""

    user: models.OneToOneField[Any, Any] = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wechat_account"
    )
    appid: models.CharField[str, str] = models.CharField("AppID", max_length=64)
    openid: models.CharField[str, str] = models.CharField(max_length=128)
    unionid: models.CharField[str, str] = models.CharField(
        max_length=128, blank=True, default="", db_index=True
    )
    nickname: models.CharField[str, str] = models.CharField(max_length=255, blank=True, default="")
    avatar_url: models.CharField[str, str] = models.CharField(
        max_length=1024, blank=True, default=""
    )
    #: E.164 (``+8613800138000``), as the user shared it; "" if not shared.
    phone: models.CharField[str, str] = models.CharField(max_length=32, blank=True, default="")
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)
    updated: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "wafer_wechat_account"
        verbose_name = "WeChat account"
        constraints = [
            models.UniqueConstraint(fields=["appid", "openid"], name="wafer_account_appid_openid")
        ]

    def __str__(self) -> str:
        return f"{self.nickname or self.openid} ({self.appid})"


class StoredUser(models.Model):
    """A user of the ``django://`` store (:class:`wafer_py.models.User`)."""

    openid: models.CharField[str, str] = models.CharField(max_length=128, primary_key=True)
    unionid: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, db_index=True
    )
    profile: models.TextField[str, str] = models.TextField()  # JSON, as the SQL store keeps it
    created_at: models.FloatField[float, float] = models.FloatField()
    updated_at: models.FloatField[float, float] = models.FloatField()
    phone: models.CharField[str | None, str | None] = models.CharField(max_length=64, null=True)

    class Meta:
        db_table = "wafer_dj_users"


class StoredSession(models.Model):
    """A session of the ``django://`` store: the skey's keyed hash and the sealed
    session_key only (:class:`wafer_py.models.Session`)."""

    id: models.CharField[str, str] = models.CharField(max_length=64, primary_key=True)
    openid: models.CharField[str, str] = models.CharField(max_length=128, db_index=True)
    skey_hash: models.CharField[str, str] = models.CharField(max_length=128, unique=True)
    sealed_session_key: models.TextField[str, str] = models.TextField()
    created_at: models.FloatField[float, float] = models.FloatField()
    last_seen: models.FloatField[float, float] = models.FloatField()
    expires_at: models.FloatField[float, float] = models.FloatField(db_index=True)

    class Meta:
        db_table = "wafer_dj_sessions"


class StoredEntry(models.Model):
    """An entry of the ``django://`` store (a cached token, a web session's sealed tokens)."""

    key: models.CharField[str, str] = models.CharField(max_length=255, primary_key=True)
    value: models.TextField[str, str] = models.TextField()
    expires_at: models.FloatField[float, float] = models.FloatField(db_index=True)

    class Meta:
        db_table = "wafer_dj_entries"


class StoredLock(models.Model):
    """A lock of the ``django://`` store: one owner until ``expires_at``."""

    name: models.CharField[str, str] = models.CharField(max_length=255, primary_key=True)
    owner: models.CharField[str, str] = models.CharField(max_length=255)
    expires_at: models.FloatField[float, float] = models.FloatField()

    class Meta:
        db_table = "wafer_dj_locks"
