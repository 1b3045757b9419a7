"""The root of the ``acthash`` command: the Typer app, the one error boundary, and ``main``.

Each command group lives in its own module (:mod:`~acthash.cli.run`,
:mod:`~acthash.cli.data`, :mod:`~acthash.cli.sweeps`, :mod:`~acthash.cli.figures`,
:mod:`~acthash.cli.study`) and adds itself here with ``register(app)``; a command imports
its experiment or study code when it runs, so ``acthash --help`` loads no training stack.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from acthash.cli import data, figures, run, study, study_ood, sweeps
from acthash.cli._tables import err_console
from acthash.errors import EXIT_USER_ERROR, ActhashError


class _ErrorBoundary(TyperGroup):
    """The one place user errors are turned into a message and an exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ActhashError as e:
            message = " ".join(str(e).split())
            err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
            ctx.exit(EXIT_USER_ERROR)


app = typer.Typer(
    name="acthash",
    cls=_ErrorBoundary,
    help="A trained neural network as a hash encoder: neural codes and their encoding properties.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    """A trained neural network as a hash encoder: neural codes and their encoding properties."""
    import matplotlib

    matplotlib.use("Agg")  # the CLI writes files; it never opens a window


# commands first, in the order of `acthash --help`, then the groups
for _group in (run, sweeps, figures, data, study, study_ood):
    _group.register(app)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
