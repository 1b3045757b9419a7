"""Runs of the main study: the settings of one run (:mod:`~acthash.runs.config`, torch-free),
one run end to end (:mod:`~acthash.runs.experiment`), the paper's presets, sweeps over grids
of runs (:mod:`~acthash.runs.sweep`) and the result store (:mod:`~acthash.runs.results`,
pandas only). Import the submodule you need; this package imports nothing itself."""
