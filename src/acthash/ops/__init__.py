"""Algebra on packed codes (``uint8`` rows of bits): popcounts, packed products, exact
Hamming k-NN, class Gram blocks, and the K-Means and logistic-regression solvers.

These modules read ``.packed`` arrays; they never import :mod:`acthash.core`."""
