"""The ``noisescale`` command line: one module per command group.

``thin`` (:mod:`.thin`), ``simulate`` (:mod:`.simulate`), ``images`` (:mod:`.images`),
``clean`` (:mod:`.clean`), the sweep's ``run``, ``fit``, ``report`` and ``demo``
(:mod:`.sweep`) and ``figures`` (:mod:`.figures`). Each module registers its subcommands
with ``add_command(s)(sub)``; :func:`main` runs one with Ctrl-C and SIGTERM turned into a
clean stop.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import clean, figures, images, simulate, sweep, thin

    parser = argparse.ArgumentParser(
        prog="noisescale",
        description="Measure how sequencing depth (measurement noise) limits what models "
                    "learn about cells.")
    parser.add_argument("--version", action="version", version=f"noisescale {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    simulate.add_command(sub)
    thin.add_command(sub)
    images.add_command(sub)
    sweep.add_commands(sub)
    figures.add_command(sub)
    clean.add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import Cancelled

    parser = build_parser()
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM ask the job to stop at its next chunk, where it can clean up (an
    # exception raised at an arbitrary point could land in a destructor and be lost);
    # a second signal interrupts at once.
    args.cancel = threading.Event()

    def stop(signum, frame) -> None:
        if args.cancel.is_set():
            raise KeyboardInterrupt
        args.cancel.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return args.run(args)
    except (KeyboardInterrupt, Cancelled) as e:
        print(f"noisescale {args.command}: interrupted; {e or 'no output was written'}",
              file=sys.stderr)
        return 130
    except (ValueError, KeyError, TypeError, OSError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"noisescale {args.command}: error: {message}", file=sys.stderr)
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
