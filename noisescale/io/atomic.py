"""Small files written atomically: readers see the old file or the new one, never a part."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .temporaries import clean_destination, temporary_path


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write a small file through a temporary sibling and a rename: readers (and a process
    killed mid-write) see the old file or the new one, never a part. The sibling is named
    after this host and process (:mod:`.temporaries`); those a killed writer left for the
    same path are removed first."""
    path = Path(path)
    clean_destination(path)
    tmp = temporary_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
