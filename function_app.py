"""The CloudOps function app: a table of contents. Each feature is a blueprint."""

import azure.durable_functions as df
import azure.functions as func

from functions.http.artifacts import bp as artifacts_bp
from functions.http.health import bp as health_bp
from functions.http.realtime import bp as realtime_bp

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (health_bp, artifacts_bp):
    app.register_functions(blueprint)
app.register_functions(realtime_bp)
