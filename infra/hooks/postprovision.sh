#!/bin/sh
# After provisioning: create the app's Postgres role from its managed identity, grant it
# the schema, and apply the migrations as that role (so the app owns its tables and its
# own start-up migrations work). Runs as the deployer, the server's Entra admin.
# azd exports the Bicep outputs (POSTGRES_HOST, POSTGRES_DATABASE, POSTGRES_APP_ROLE...)
# and the environment (AZURE_PRINCIPAL_NAME) to this script.
set -eu
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
exec "$PY" -m infra.hooks.postprovision
