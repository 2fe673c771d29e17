"""``noisescale clean``: remove the temporary outputs that killed noisescale processes left."""

from __future__ import annotations

import argparse
import sys

CLEAN_HELP = """\
Remove the hidden temporary outputs that noisescale processes killed with SIGKILL (kill -9,
the out-of-memory killer, a job scheduler's hard limit, a power cut) left under DIR.

Every noisescale output is built in a hidden sibling of its destination,
.NAME.noisescale-tmp-HOST-PID-TOKEN, and renamed into place when complete. Errors, Ctrl-C
and SIGTERM remove it; SIGKILL cannot, so the sibling stays until the next write to the same
destination, or this command, removes it. Only temporaries written on this host by a process
that is no longer running are removed: another host's, or a running process's, are listed
and kept. A previous output moved aside (.NAME.noisescale-old-...) by a replacement that was
killed before its destination was in place is kept too: rename it back to NAME.

examples:
  noisescale clean /data/thinned --dry-run
  noisescale clean sweeps/run1
"""


def add_command(sub) -> None:
    p = sub.add_parser("clean", help="remove temporary outputs left by killed noisescale runs",
                       description=CLEAN_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", metavar="DIR", help="directory to search, with its "
                                                    "subdirectories (not inside .zarr stores)")
    p.add_argument("--dry-run", action="store_true",
                   help="list what would be removed; remove nothing")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.set_defaults(run=_run_clean, parser=p)


def _run_clean(args: argparse.Namespace) -> int:
    from ..io.temporaries import find_temporaries

    removed = kept = 0
    verb = "would remove" if args.dry_run else "removed"
    for t in find_temporaries(args.directory):
        if t.removable:
            if not args.dry_run:
                t.remove()
            removed += 1
            line = f"{verb} {t.path} ({t.reason()})"
        else:
            kept += 1
            line = f"kept {t.path} ({t.reason()})"
        if not args.quiet:
            print(line, file=sys.stderr)
    if not args.quiet:
        print(f"{verb} {removed} temporar{'y' if removed == 1 else 'ies'}, kept {kept}",
              file=sys.stderr)
    return 0
