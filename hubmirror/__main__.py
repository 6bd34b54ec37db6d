"""`python -m hubmirror ...`: the same as the `hubmirror` console script."""

import sys

from hubmirror.cli import main

sys.exit(main())
