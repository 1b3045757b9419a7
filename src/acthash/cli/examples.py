"""``acthash example``: the example sweep files shipped in the package (reachable from a
wheel, without the repository)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acthash.cli._tables import console
from acthash.examples import example_text, list_examples, write_example

example_app = typer.Typer(help="Example sweep files bundled with acthash: list or write one.",
                          no_args_is_help=True)


@example_app.command("list")
def example_list() -> None:
    """The bundled examples, with the command that writes each."""
    table = Table(title="examples")
    for col in ("name", "file", "what it is"):
        table.add_column(col, no_wrap=col != "what it is")
    for ex in list_examples():
        table.add_row(ex["name"], ex["file"], ex["summary"])
    console.print(table)
    console.print("write one with [bold]acthash example NAME[/] (--out FILE, or --out - to print)")


def _writer(name: str, file: str):
    def command(
        out: Annotated[Path | None, typer.Option(
            help=f"Where to write it (default ./{file}; - prints it).")] = None,
        force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
    ) -> None:
        if out is not None and str(out) == "-":
            typer.echo(example_text(name), nl=False)
            return
        path = write_example(name, out, overwrite=force)
        console.print(f"wrote {path}; run it with [bold]acthash sweep {path}[/]")

    command.__doc__ = f"Write the example sweep file {file}."
    return command


for _ex in list_examples():
    example_app.command(_ex["name"])(_writer(_ex["name"], _ex["file"]))


def register(app: typer.Typer) -> None:
    """Add the ``example`` group to the root command."""
    app.add_typer(example_app, name="example")
