"""Shared infrastructure, private to acthash: atomic io, run directories and provenance,
the config contract, the checks of user arrays, and the memory-budget / backend choice."""

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed version of acthash ("0.0.0+unknown" in a source tree without install)."""
    try:
        return version("acthash")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0+unknown"
