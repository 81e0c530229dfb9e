"""A small, general Azure Functions host that runs a Python v2-model function app offline.

It knows nothing about the app it runs (projects, deployments...): it discovers the
functions with ``app.get_functions()`` and serves their triggers. Emulations of Azure
services (Durable Functions, SignalR Service, Service Bus, Easy Auth) plug in as
extensions; see ``localhost/extension.py``.
"""
