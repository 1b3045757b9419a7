"""Companion studies built on the acthash core (spectrum alignment, ...)."""
