"""The ``dualnets`` command line: one sub-command per module in :mod:`dualnets.commands`.

Bad input (ValueError, a missing file) prints one line ``dualnets: error: ...`` and exits 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("solve", "make_problem", "datasets", "sweep", "report", "compare", "train",
            "headroom")
EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad command-line input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dualnets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"dualnets.commands.{name}")
        cmd = sub.add_parser(name.replace("_", "-"), help=module.__doc__.splitlines()[0],
                             description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except (ValueError, OSError) as exc:
        print(f"dualnets: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("dualnets: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
