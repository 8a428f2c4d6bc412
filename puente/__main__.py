"""``python -m puente``: the same as the ``puente`` console script."""

import sys

from puente.cli import main

sys.exit(main())
