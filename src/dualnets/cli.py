"""The ``dualnets`` command line: one sub-command per module in :mod:`dualnets.commands`.

Bad input (ValueError, a missing file) prints one line ``dualnets: error: ...`` and exits 2,
without a traceback.  Any other exception is a bug or a crash: one line naming the sub-command
that failed and a hint, exit 1; ``dualnets --debug ...`` re-raises it with its traceback.
Ctrl-C prints one line and exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = ("solve", "make_problem", "datasets", "sweep", "report", "compare", "train",
            "headroom")
EXIT_BAD_INPUT = 2
EXIT_CRASH = 1
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Bad command-line input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dualnets", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"dualnets.commands.{name}")
        cmd = sub.add_parser(name.replace("_", "-"), help=module.__doc__.splitlines()[0],
                             description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


class _Stderr(logging.Handler):
    """Warnings of the library (e.g. a quarantined store file) as ``dualnets: warning: ...``."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"dualnets: warning: {record.getMessage()}", file=sys.stderr)


def _show_warnings() -> None:
    logger = logging.getLogger("dualnets")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr(logging.WARNING))
        logger.setLevel(logging.WARNING)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = None
    _show_warnings()
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except (ValueError, OSError) as exc:
        if args is not None and args.debug:
            raise
        print(f"dualnets: error: {_first_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("dualnets: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a crash: one line, the traceback on --debug
        if args is not None and args.debug:
            raise
        step = getattr(args, "command", None) or "dualnets"
        print(f"dualnets: error: {step} failed unexpectedly: {type(exc).__name__}: "
              f"{_first_line(exc)} (rerun with `dualnets --debug {step} ...` for the "
              "traceback)", file=sys.stderr)
        return EXIT_CRASH


if __name__ == "__main__":
    sys.exit(main())
