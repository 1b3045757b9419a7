"""Dataset registry: ``acthash.data.load(name, **options) -> Dataset``."""

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
