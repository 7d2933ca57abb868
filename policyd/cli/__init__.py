"""The ``policyd`` command line."""
