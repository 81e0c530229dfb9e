"""The HTTP API's contract: its OpenAPI document and the public JSON shapes (camelCase)
that the API answers and realtime events carry."""
