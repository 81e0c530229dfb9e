"""The local Durable Functions engine (see ``engine.py``); the host adapter is added later."""
