"""The CloudOps agent: a small program that runs on-prem (or in a cluster), pulls jobs
from the control plane over HTTPS and runs them. It talks to the API over HTTP only and
keeps database credentials and kubeconfigs to itself. See ``agent/README.md``."""

__version__ = "0.1.0"
