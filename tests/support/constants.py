"""The apps, secrets and limits the tests share."""

from __future__ import annotations

from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID

#: A second app the fake knows besides the demo one where a module is marked
#: ``pytest.mark.fake_apps(TWO_APPS)``.
OTHER_APPID = "wx0123456789abcdef"
OTHER_SECRET = "othersecret00000000000000000000x"
TWO_APPS = {DEMO_APPID: DEMO_APP_SECRET, OTHER_APPID: OTHER_SECRET}
#: An OAuth callback with a query of its own.
CALLBACK = "https://example.com/wechat/oauth/callback?next=%2Fweb"
#: The secret key of the tests' auths (WaferConfig refuses keys under 32 characters).
TEST_SECRET = "test-secret-key-of-the-wafer-py-test-suite"
#: Variables that run an example app against the fake WeChat: its demo app, named
#: explicitly (a config falls back to it only with ``fake_wechat=True``, in code).
DEMO_ENV = {"WAFER_APPID": DEMO_APPID, "WAFER_APP_SECRET": DEMO_APP_SECRET}
#: The same as ``WaferConfig`` fields.
DEMO_APP = {"appid": DEMO_APPID, "app_secret": DEMO_APP_SECRET}
#: Seconds an HTTP request of a test may take.
TIMEOUT = 10
#: The example apps, by the framework they are written for ("django" under ASGI,
#: "django-wsgi" the same project under WSGI).
FRAMEWORKS = ["starlette", "flask", "django", "django-wsgi"]
#: The examples with the web page behind official-account OAuth (/web/profile).
WEB_FRAMEWORKS = ["starlette", "flask", "django", "django-wsgi"]
