"""The ``cloudops`` command line: the composition root for local runs and operator tasks."""
