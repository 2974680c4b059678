"""`python -m lrn_ablate` is the `lrn-ablate` command."""

import sys

from lrn_ablate.cli import main

sys.exit(main())
