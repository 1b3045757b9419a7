"""Shared infrastructure, private to acthash: atomic io, run directories and provenance,
the config contract, the checks of user arrays, and the memory-budget / backend choice."""
