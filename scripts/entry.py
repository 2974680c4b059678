"""How a script ends on bad input: the one sentence of its UserError and exit 2, as `lrn-ablate` ends."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from lrn_ablate.errors import UserError


def run(main: Callable[[], object]) -> None:
    """Call the script's main(); a UserError (a missing tree, a bad setting) ends it with one sentence."""
    try:
        main()
    except UserError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
