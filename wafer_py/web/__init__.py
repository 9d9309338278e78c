"""Official-account web login (网页授权) for H5 pages opened in WeChat.

* :mod:`.oauth`: the OAuth client (authorize URL, code -> token, refresh, userinfo);
* :mod:`.state`: signed, single-use, browser-bound OAuth states;
* :mod:`.login`: the browser flow and web sessions (:class:`~.login.WebLogin`), with its
  cookie codec (:mod:`.cookie`) and its pages' status table (:mod:`.errors`);
* :mod:`.pages` and :mod:`.texts`: the HTML pages it serves (phone-sized, Chinese or
  English by ``Accept-Language``) and their words.
"""
