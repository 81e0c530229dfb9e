"""Domain, ports, adapters and settings of the control plane.

Imports nothing from ``functions/``, ``localhost/`` or ``azure.functions``.
"""
