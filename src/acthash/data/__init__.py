"""Dataset registry: ``acthash.data.load(name, **options) -> Dataset``.

:mod:`~acthash.data.registry` holds the table; :mod:`~acthash.data.loaders` (and
:mod:`~acthash.data.manifolds`, which it imports) register the built-in datasets into it when
this package is imported, so imports go one way: loaders -> registry.
"""

from acthash.data import loaders  # noqa: E402,F401  (registers the built-in datasets)
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
