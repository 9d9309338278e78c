"""wafer_py for Django: the WeChat account model, the auth backend, the ``django://``
store, Django REST framework authentication and management commands.

Add ``"wafer_py.django"`` to ``INSTALLED_APPS`` and run ``migrate``.
"""
