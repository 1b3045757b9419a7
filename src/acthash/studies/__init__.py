"""Companion studies built on the acthash core (one module per study)."""
