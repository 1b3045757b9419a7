"""The ``acthash`` command line (Typer). Each command mirrors a Python function.

The root, its error boundary and ``main`` are in :mod:`~acthash.cli.app`; one module per
command group registers its commands there.

Conventions, the same for every command:

- an option is named after the config field it sets (``--n-points`` sets ``n_points``);
  a test checks every command's options against its config's fields;
- wherever a dataset is used: ``--dataset``, ``--data-dir`` and ``-O KEY=VALUE`` (dataset
  options); wherever a model is trained or built: the model options and ``--device``;
- lists are comma-separated (``--checkpoints 0,1,5``; ``--seeds 0,1,2``);
- companion studies live under ``acthash study``;
- a user error (bad input, missing file, ...) or an environment error (full disk, read-only
  folder, unavailable device) prints one ``error:`` line and exits with status 3
  (:data:`acthash.errors.EXIT_USER_ERROR`); a usage error exits with 2; ``--debug`` (or
  ``ACTHASH_DEBUG=1``) shows the traceback instead;
- ``--format csv|json|markdown`` prints a command's table plainly on stdout, for scripts;

The CLI draws figures with matplotlib's Agg backend (the library never chooses one).
"""

from acthash.cli._options import CLI_ONLY, parse_key_values
from acthash.cli._tables import print_metrics, print_timings
from acthash.cli.app import app, main

__all__ = ["CLI_ONLY", "app", "main", "parse_key_values", "print_metrics", "print_timings"]
