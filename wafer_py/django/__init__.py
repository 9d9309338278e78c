"""Django integration: ``WaferMiddleware``, ``login_required`` and the view helpers; the
WeChat account model and auth backend (:mod:`.backends`), Django REST framework
authentication (:mod:`.drf`), the ``django://`` store and the management commands.

Add ``"wafer_py.django"`` to ``INSTALLED_APPS`` and the middleware after
``AuthenticationMiddleware``; configure with ``WAFER_*`` settings (the environment as a
fallback)::

    from wafer_py.django import login_required

    @login_required
    def user(request):
        return JsonResponse({"code": 0, "data": {"userInfo": request.wafer_user.userinfo()}})

``request.wafer_user`` is the same object as Flask's ``current_user`` and Starlette's
``request.user``; ``request.user`` is the Django user linked to the WeChat account.
This module imports nothing of Django's models, so it may be imported from settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "WaferMiddleware",
    "WaferHttpRequest",
    "login_required",
    "wafer_state",
    "get_current_user",
    "error_response",
    "fetch_phone_number",
    "afetch_phone_number",
    "set_profile",
    "aset_profile",
    "upload_avatar",
    "aupload_avatar",
    "avatar_response",
    "aavatar_response",
    "revoke_session",
    "arevoke_session",
]

if TYPE_CHECKING:
    from .decorators import login_required
    from .middleware import WaferHttpRequest, WaferMiddleware
    from .views import (
        aavatar_response,
        afetch_phone_number,
        arevoke_session,
        aset_profile,
        aupload_avatar,
        avatar_response,
        error_response,
        fetch_phone_number,
        get_current_user,
        revoke_session,
        set_profile,
        upload_avatar,
        wafer_state,
    )

_HOMES = {name: ".decorators" if name == "login_required" else ".views" for name in __all__}
_HOMES["WaferMiddleware"] = _HOMES["WaferHttpRequest"] = ".middleware"


def __getattr__(name: str) -> Any:
    # Lazily: Django loads this package as an app before its settings are all read.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home, __name__), name)
