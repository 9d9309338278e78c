"""Official-account web login (网页授权) for H5 pages opened in WeChat.

* :mod:`.oauth`: the OAuth client (authorize URL, code -> token, refresh, userinfo),
  returning the values of :mod:`.grants`;
* :mod:`.state`: signed, single-use, browser-bound OAuth states;
* :mod:`.login`: the browser flow (:class:`~.login.WebLogin`: guard, callback, logout),
  answering with the values of :mod:`.access`;
* :mod:`.sessions`: web sessions, their tokens sealed in the store (records in
  :mod:`.records`), their users in a signed cookie (:mod:`.cookie`);
* :mod:`.confirm`: the login-CSRF confirmation for a callback from another browser;
* :mod:`.pages`, :mod:`.texts` and :mod:`.errors`: the HTML pages it serves
  (phone-sized, Chinese or English by ``Accept-Language``), their words and statuses.
"""
