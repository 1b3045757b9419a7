"""The neural code itself: the activation recorder, capture of ReLU-like units into packed
:class:`NeuralCodes`, and the real-valued aggregate codes of CNNs."""
