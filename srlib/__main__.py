"""``python -m srlib``: see :mod:`srlib.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
