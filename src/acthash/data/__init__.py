"""Dataset registry: ``acthash.data.load(name, **options) -> Dataset``.

:mod:`~acthash.data.registry` holds the table; :mod:`~acthash.data.loaders` and
:mod:`~acthash.data.manifolds` register the built-in datasets into it when this package is
imported (imports go one way: loaders -> registry). Nothing here imports torch until a
dataset is loaded.
"""

from acthash.data import loaders, manifolds  # noqa: F401  (register the built-ins)
from acthash.data.registry import (
    Dataset,
    available_datasets,
    data_root,
    list_datasets,
    load,
    register_dataset,
    with_random_labels,
)
from acthash.errors import DatasetNotFoundError

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "available_datasets",
    "data_root",
    "list_datasets",
    "load",
    "register_dataset",
    "with_random_labels",
]
