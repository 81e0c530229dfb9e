"""Azure Functions: thin modules that parse, authorize, call ``shared`` and shape responses."""
