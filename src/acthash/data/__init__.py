"""Dataset registry: ``acthash.data.load(name, **options) -> Dataset``."""

from acthash.data.registry import (
    Dataset,
    DatasetNotFoundError,
    available_datasets,
    list_datasets,
    load,
    register_dataset,
)

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "available_datasets",
    "list_datasets",
    "load",
    "register_dataset",
]
