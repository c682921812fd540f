"""Command line: ``python -m core <command> ...``. Each command lives in ``core/commands/<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import DigitLabError

COMMANDS = ("data", "train", "runs", "grid", "label-issues", "evaluate", "challenge", "ensemble")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description="Digit Lab from the terminal")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"core.commands.{name.replace('-', '_')}").register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except DigitLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
