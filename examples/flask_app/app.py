"""An ordinary Flask app, wrapped by wafer_py in a few lines.

Everything above the "wafer_py" marker is the app as it was before; the marked lines
add Wafer login (``/weapp/login``) and the protected ``/weapp/user``.

Run it: ``flask --app examples.flask_app.app run`` (configured by ``WAFER_*`` variables),
or ``wafer-py demo --framework flask`` for the demo with the fake WeChat.
"""

from __future__ import annotations

from flask import Flask

from wafer_py import WaferAuth, WaferConfig
from wafer_py.flask import Wafer, current_user, login_required


def create_app(auth: WaferAuth | None = None) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def index() -> dict[str, object]:
        return {"code": 0, "data": {"message": "hello from an ordinary Flask app"}}

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"ok": True}

    # --- wafer_py: the login path, and a route that needs a session ---------------
    Wafer(app, auth or WaferAuth(WaferConfig.from_env()))  # answers /weapp/login

    @app.get("/weapp/user")
    @login_required
    def weapp_user() -> dict[str, object]:
        return {"code": 0, "data": {"userInfo": current_user.userinfo()}}

    return app
