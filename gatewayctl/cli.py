"""gatewayctl command line: `gatewayctl --help` lists the commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatewayctl", description="Operate an llm-gateway deployment.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="Serve the whole gateway on 127.0.0.1 (local mode).")
    serve.set_defaults(handler=_serve_not_built)
    return parser


def _serve_not_built(args: argparse.Namespace) -> int:
    print("The local gateway is not built yet.", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
