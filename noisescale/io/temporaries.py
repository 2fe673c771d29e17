"""Hidden temporary outputs, named after the process that writes them, and their clean-up.

Every output (an AnnData store, a small file) is built in a hidden sibling of its destination
and renamed into place when complete. Errors, Ctrl-C and SIGTERM remove the sibling; SIGKILL,
a power cut or an out-of-memory kill cannot. So the sibling's name says who wrote it::

    .{destination name}.noisescale-tmp-{host}-{pid}-{token}

(``-old-`` instead of ``-tmp-`` for an existing destination moved aside while it is being
replaced). A temporary is *abandoned* when its host is this host and no process with its PID
is alive. The next write to the same destination removes the abandoned temporaries of that
destination, and :func:`remove_stale_temporaries` (``noisescale clean DIR``) removes those
under a directory. A temporary of another host, or of a live process, is never touched (a
PID reused by an unrelated live process keeps a temporary until that process ends). The host
is ``socket.gethostname()``: machines or containers that share a file system and write to it
must have distinct host names (containers do by default), or their PIDs would be confused. An
abandoned ``-old-`` copy whose destination is missing (a replacing commit killed between its
two renames) is the previous output: it is kept and reported, to be renamed back.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

MARK = ".noisescale-"
_NAME = re.compile(r"^\.(?P<dest>.+)\.noisescale-(?P<kind>tmp|old)-(?P<host>[A-Za-z0-9._-]+)"
                   r"-(?P<pid>\d+)-(?P<token>[0-9a-f]{12})$")


def host() -> str:
    """This host's name as it appears in temporary names (at most 64 safe characters)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname() or "localhost")
    return name[:64] or "localhost"


def temporary_path(destination: str | os.PathLike, kind: str = "tmp") -> Path:
    """A fresh hidden sibling of ``destination`` named after this host and process."""
    if kind not in ("tmp", "old"):
        raise ValueError(f"kind must be 'tmp' or 'old', got {kind!r}")
    dest = Path(destination)
    return dest.with_name(f".{dest.name}{MARK}{kind}-{host()}-{os.getpid()}-"
                          f"{secrets.token_hex(6)}")


@dataclass(frozen=True)
class Temporary:
    """A noisescale temporary found on disk."""

    path: Path
    destination: Path
    kind: str  # 'tmp': an output being written; 'old': a destination moved aside
    host: str
    pid: int

    @property
    def abandoned(self) -> bool:
        """Written on this host by a process that is no longer alive."""
        return self.host == host() and not pid_alive(self.pid)

    @property
    def keep(self) -> bool:
        """A previous output whose destination is gone: to be renamed back, never removed."""
        return self.kind == "old" and not (self.destination.exists()
                                           or self.destination.is_symlink())

    @property
    def removable(self) -> bool:
        """Abandoned, and not a previous output to rename back."""
        return self.abandoned and not self.keep

    def reason(self) -> str:
        """Why it is removable or kept, in words."""
        if self.host != host():
            return f"written on host {self.host}"
        if not self.abandoned:
            return f"process {self.pid} is running"
        if self.keep:
            return (f"the previous {self.destination.name}, whose replacement was killed: "
                    f"rename it back to {self.destination}")
        return f"process {self.pid} is gone"

    def remove(self) -> None:
        """Delete it (a file or a directory store)."""
        _remove(self.path)


def parse(path: str | os.PathLike) -> Temporary | None:
    """The :class:`Temporary` a path names, or None for any other name."""
    p = Path(path)
    m = _NAME.match(p.name)
    if m is None:
        return None
    return Temporary(p, p.with_name(m["dest"]), m["kind"], m["host"], int(m["pid"]))


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host (zombies count as alive)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True  # cannot tell: keep its files
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:  # removed meanwhile by another cleaner
            pass


def _candidates(directory: Path, prefix: str = ".") -> list[Temporary]:
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for e in entries:
        if e.name.startswith(prefix) and MARK in e.name:
            t = parse(Path(directory) / e.name)
            if t is not None:
                found.append(t)
    return found


def clean_destination(destination: str | os.PathLike) -> list[Path]:
    """Remove the abandoned temporaries of one destination (before a new write to it)."""
    dest = Path(destination)
    removed = []
    for t in _candidates(dest.parent, f".{dest.name}{MARK}"):
        if t.destination.name == dest.name and t.removable:
            t.remove()
            removed.append(t.path)
    return removed


def find_temporaries(directory: str | os.PathLike) -> list[Temporary]:
    """Every noisescale temporary under ``directory`` (not inside zarr stores or temporaries),
    sorted by path."""
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    found: list[Temporary] = []
    for here, dirs, _ in os.walk(root):
        found.extend(_candidates(Path(here)))
        dirs[:] = [d for d in dirs if MARK not in d and not d.endswith(".zarr")
                   and not os.path.islink(os.path.join(here, d))]
    return sorted(found, key=lambda t: str(t.path))


def remove_stale_temporaries(directory: str | os.PathLike, *,
                             dry_run: bool = False) -> list[Path]:
    """Remove the abandoned noisescale temporaries under ``directory``; return their paths.

    Abandoned: written on this host by a process that is no longer alive (killed with
    SIGKILL, out of memory, a power cut). Temporaries of live processes and of other hosts
    are left alone, and so is an abandoned previous output whose destination is missing
    (see the module docstring). With ``dry_run``, nothing is removed.
    """
    removed = []
    for t in find_temporaries(directory):
        if t.removable:
            if not dry_run:
                t.remove()
            removed.append(t.path)
    return removed
