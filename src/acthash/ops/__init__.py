"""Algebra on packed codes (``uint8`` rows of bits): popcounts (:mod:`.bits`), packed
products, exact Hamming k-NN, class Gram blocks, and the K-Means and logistic-regression
solvers (vocabularies :data:`.kmeans.KMEANS_SOLVERS`, :data:`.logreg.LOGREG_SOLVERS`).

bits, hamming, packed and gram read ``.packed`` arrays by duck typing
(:func:`acthash._utils.validate.as_packed`) and never import :mod:`acthash.core`; kmeans and
logreg take 0/1 arrays too, through :func:`acthash.core.codes.as_codes`."""
