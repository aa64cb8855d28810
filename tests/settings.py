"""Settings for the test suite: the project's, with the development defaults (DEBUG on,
so no HTTPS redirect or secure-only cookies over the test client's plain HTTP).

Set before the project's settings are read; the processes tests start inherit it."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from reviewapp.settings import *  # noqa: F403
