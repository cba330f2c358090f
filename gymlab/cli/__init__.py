"""The `gymlab` command. Thin: it parses, calls the library, and maps outcomes to exit codes.

One module per command, each with `HELP`, `parse(argv)` and `run(args) -> exit code`. This
parser only picks the command; the command's module parses the rest, importing heavy
modules (torch, gymnasium, matplotlib, an algorithm's config) only for what it was asked,
so `gymlab --help` answers at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType

from gymlab.cli import evaluate, meta, nas, new_env, plot, record, train, tune
from gymlab.cli.parser import EXIT_USER_ERROR, REST, Parser, listing
from gymlab.core.errors import EnvError, UserError

__all__ = ["COMMANDS", "EXIT_USER_ERROR", "Parser", "main"]

COMMANDS: dict[str, ModuleType] = {
    "train": train, "eval": evaluate, "record": record, "plot": plot, "nas": nas,
    "meta": meta, "tune": tune, "new-env": new_env,
}


def parser() -> Parser:
    top = Parser(prog="gymlab", usage="%(prog)s [-h] [--version] COMMAND ...",
                 description="gymlab: a reinforcement-learning lab.",
                 epilog=listing("commands", {name: c.HELP for name, c in COMMANDS.items()})
                 + "\n\ngymlab COMMAND --help shows a command's options.")
    top.add_argument("--version", action="version", version=_version())
    top.add_rest("COMMAND ...", "one of the commands below, then its arguments")
    return top


def _version() -> str:
    from importlib import metadata

    return f"gymlab {metadata.version('gymlab')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code: 0 done, 1 diverged, a failing environment or an OS
    error (disk full), 2 a user error, 130/143 stopped by SIGINT/SIGTERM (after saving)."""
    top = parser()
    rest = getattr(top.parse_args(sys.argv[1:] if argv is None else list(argv)), REST)
    if not rest:
        top.error("a command is needed: " + ", ".join(COMMANDS))
    command = COMMANDS[top.choose(rest[0], list(COMMANDS), "COMMAND")]
    try:
        return command.run(command.parse(rest[1:]))
    except UserError as exc:
        print(f"gymlab: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (OSError, EnvError) as exc:  # disk full, an environment that crashed: one line
        print(f"gymlab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a command that is not a run (build-table, eval): nothing to save
        print(f"gymlab: {rest[0]} interrupted", file=sys.stderr)
        return 130
