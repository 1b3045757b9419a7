"""``acthash data``: the datasets known to acthash (listed without importing torch)."""

from __future__ import annotations

import typer
from rich.table import Table

from acthash.cli._tables import show

data_app = typer.Typer(help="Datasets: list what is available and how to get the rest.",
                       no_args_is_help=True)


@data_app.command("list")
def data_list() -> None:
    """Datasets known to acthash, whether each is available here, and how to get it."""
    from acthash.data import list_datasets

    table = Table(title="datasets")
    for col in ("name", "available", "description", "how to get"):
        table.add_column(col)
    for d in list_datasets():
        table.add_row(d["name"], "yes" if d["available"] else "no", d["description"],
                      d["how_to_get"])
    show(table)


def register(app: typer.Typer) -> None:
    """Add the ``data`` group to the root command."""
    app.add_typer(data_app, name="data")
