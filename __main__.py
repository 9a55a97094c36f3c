"""`python -m fathom` runs the command line."""

import sys

from fathom.entrypoints.cli import main

sys.exit(main())
