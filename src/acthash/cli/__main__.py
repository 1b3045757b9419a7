"""``python -m acthash.cli``: the ``acthash`` command."""

from acthash.cli.app import main

main()
