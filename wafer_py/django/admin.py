"""The admin page of WeChat accounts: searchable, ids read-only, the phone masked.

There is no secret to hide: the account keeps no skey and no session_key (they stay in
the session store, hashed and sealed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from .models import WeChatAccount

__all__ = ["WeChatAccountAdmin", "mask_phone"]

if TYPE_CHECKING:  # generic in django-stubs only
    _ModelAdmin = admin.ModelAdmin[WeChatAccount]
else:
    _ModelAdmin = admin.ModelAdmin


def mask_phone(phone: str) -> str:
    """``+8613812345678`` -> ``+86138****5678``: enough to recognise a number, not to
    call it. Numbers too short to mask that way are hidden whole."""
    if not phone:
        return ""
    if len(phone) < 8:
        return "****"
    return f"{phone[:-8]}****{phone[-4:]}"


@admin.register(WeChatAccount)
class WeChatAccountAdmin(_ModelAdmin):
    """WeChat accounts: the phone only masked, the ids and the profile read-only (they
    follow WeChat at each login)."""

    list_display = ("openid", "appid", "nickname", "masked_phone", "user", "created")
    list_filter = ("appid",)
    search_fields = ("openid", "unionid", "nickname")
    list_select_related = ("user",)
    fields = (
        "user",
        "appid",
        "openid",
        "unionid",
        "nickname",
        "avatar_url",
        "masked_phone",
        "created",
        "updated",
    )
    readonly_fields = fields
    ordering = ("-created",)

    @admin.display(description="phone")
    def masked_phone(self, account: WeChatAccount) -> str:
        return mask_phone(account.phone)

    def has_add_permission(self, request: object) -> bool:  # accounts come from logins
        return False
