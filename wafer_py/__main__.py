"""``python -m wafer_py``: the same as the ``wafer-py`` command."""

import sys

from .cli import main

sys.exit(main())
