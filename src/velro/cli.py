"""``velro``: serve the reference service and manage its data.

    velro serve [--host 127.0.0.1] [--port 8000] [--workers N] [--profile fixed|degraded]
                [--access-token-ttl SECONDS] [--refresh-token-ttl SECONDS]
    velro db init
    velro keys create --name NAME | list | revoke ID
    velro seed --users N --teams T --projects P [--out FILE]

Settings come from ``VELRO_*`` variables (see ``velro.settings``); flags override them.
"""

from __future__ import annotations

import argparse
import sys

from velro.commands import db, keys, seed, serve
from velro.errors import VelroError

__all__ = ["main"]


class ServeUsageError(VelroError):
    """Bad command-line input that argparse could not catch (a port in use, say)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="velro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (serve, db, keys, seed):
        module.register(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except VelroError as exc:
        print(f"velro: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
