"""`webapp-operator` (also installed as `kubectl-webapp`): the command line entry point.

Each sub-command lives in its own module and registers itself here. Bad input exits with
status 1 and one clear line per problem on stderr; usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from webapp_operator import __version__
from webapp_operator.cli import apps, offline, run, sealing, secrets
from webapp_operator.domain.errors import WebAppError

EXIT_BAD_INPUT = 1


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Juju's 12-factor web apps and secret revisions on Kubernetes. "
            "Offline commands need no cluster; the others use the current kubeconfig."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    offline.register(commands)
    secrets.register(commands)
    sealing.register(commands)
    run.register(commands)
    apps.register(commands, parser)
    return parser


def _prog(argv0: str) -> str:
    return (
        "kubectl webapp" if argv0.rsplit("/", 1)[-1].startswith("kubectl-") else "webapp-operator"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    parser = build_parser(_prog(sys.argv[0]))
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except WebAppError as error:
        for line in error.message.splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `... | head` closed the pipe: not an error of ours
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
