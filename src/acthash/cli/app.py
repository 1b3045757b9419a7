"""The root of the ``acthash`` command: the Typer app, the one error boundary, and ``main``.

Each command group lives in its own module (:mod:`~acthash.cli.run`,
:mod:`~acthash.cli.measure`, :mod:`~acthash.cli.data`,
:mod:`~acthash.cli.sweeps`, :mod:`~acthash.cli.figures`,
:mod:`~acthash.cli.study`) and adds itself here with ``register(app)``; a command imports
its experiment or study code when it runs, so ``acthash --help`` loads no training stack.

The boundary prints every :class:`~acthash.errors.ActhashError`, and every refused write
of the machine (full disk, read-only or unwritable folder, a file where a folder is
wanted), as one ``error:`` line and exits with :data:`~acthash.errors.EXIT_USER_ERROR`;
acthash's warnings print as one ``warning:`` line. ``acthash --debug ...`` or
``ACTHASH_DEBUG=1`` re-raises instead, with the traceback.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from acthash.cli import (  # noqa: F401  (study_geometry adds its commands to study)
    data,
    examples,
    figures,
    measure,
    run,
    study,
    study_geometry,
    study_ood,
    sweeps,
)
from acthash.cli._tables import err_console
from acthash.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, ActhashError

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def _debug(ctx) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("ACTHASH_DEBUG", "") not in (
        "", "0", "false", "no")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _environment_error(e: BaseException) -> ActhashError | None:
    """``e`` as an ActhashError when it is the machine refusing a write, else None."""
    from acthash._utils.io import storage_error

    if isinstance(e, OSError) and not isinstance(e, ActhashError):
        mapped = storage_error(e)
        if isinstance(mapped, ActhashError):
            return mapped
    return None


def _is_acthash_warning(category, filename: str) -> bool:
    return (getattr(category, "__module__", "").startswith("acthash")
            or str(filename).startswith(_PACKAGE_DIR))


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """acthash's warnings as one ``warning:`` line; others as Python prints them."""
    if _is_acthash_warning(category, filename):
        err_console.print(f"[bold yellow]warning:[/] {_one_line(message)}", soft_wrap=True,
                          highlight=False, markup=True)
        return
    _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


class _ErrorBoundary(TyperGroup):
    """The one place user and environment errors are turned into a message and an exit
    status, and warnings into one line each."""

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except (ActhashError, OSError) as e:
                error = e if isinstance(e, ActhashError) else _environment_error(e)
                if error is None or _debug(ctx):
                    raise
                err_console.print(f"[bold red]error:[/] {_one_line(error)}", soft_wrap=True,
                                  highlight=False, markup=True)
                ctx.exit(EXIT_USER_ERROR)
            except KeyboardInterrupt:
                if _debug(ctx):
                    raise
                err_console.print("[bold red]interrupted:[/] a run directory being written keeps "
                                  "its INCOMPLETE marker (status interrupted); rerun the "
                                  "command with --force --out DIR, or resume a sweep by "
                                  "rerunning it", soft_wrap=True, highlight=False, markup=True)
                ctx.exit(EXIT_INTERRUPTED)


app = typer.Typer(
    name="acthash",
    cls=_ErrorBoundary,
    help="A trained neural network as a hash encoder: neural codes and their encoding properties.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: rich markup would eat bracketed text such as "[default: ...]", and
    # rich's panels cut long option names with "…" on narrow terminals
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from acthash._utils import package_version

        typer.echo(f"acthash {package_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print acthash's version and exit.")] = False,
    debug: Annotated[bool, typer.Option(
        help="Show the full traceback of an error instead of one line (also "
        "ACTHASH_DEBUG=1).")] = False,
) -> None:
    """A trained neural network as a hash encoder: neural codes and their encoding properties."""
    import matplotlib

    matplotlib.use("Agg")  # the CLI writes files; it never opens a window


# commands first, in the order of `acthash --help`, then the groups
for _group in (run, measure, sweeps, figures, data, study, study_ood, examples):
    _group.register(app)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
