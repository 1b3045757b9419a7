"""Compiled (numba) kernels, private to acthash: Hamming tiles, packed products, ranking."""
