"""Atomic file replacement: readers see the old file or the new one, never a half-written one.

Used for every file another process may read while it is written: the run directory's files, the
decoded-data cache and the compiled kernel library (several first runs may write them at once: each
writes its own partial file and the last rename wins with a whole file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Yields a partial path beside `target` to write; on success it replaces target, on error it goes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (fsync'ed, so a kill or a crash keeps a whole file)."""
    with replacing(path) as partial, open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
