"""``python -m futurekit``: a short live demo of the library."""

from __future__ import annotations

import sys

from futurekit._showcase import main

if __name__ == "__main__":
    sys.exit(main())
