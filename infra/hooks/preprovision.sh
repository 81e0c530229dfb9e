#!/bin/sh
# Fills the azd environment values main.parameters.json needs and that azd does not set
# itself: the deployer's Postgres admin name, the agent-key secret (generated once and
# kept in the azd environment: changing it would invalidate every agent key), and this
# machine's public IP for the Postgres firewall (the post-provision hook migrates from here).
set -eu

get() { azd env get-value "$1" 2>/dev/null || true; }

if [ -z "$(get AZURE_PRINCIPAL_NAME)" ]; then
  name=$(az ad signed-in-user show --query userPrincipalName -o tsv 2>/dev/null || true)
  if [ -z "$name" ]; then
    echo "Signed in as a service principal: set AZURE_PRINCIPAL_NAME (its display name) and" >&2
    echo "AZURE_PRINCIPAL_TYPE=ServicePrincipal with 'azd env set' and run again." >&2
    exit 1
  fi
  azd env set AZURE_PRINCIPAL_NAME "$name"
fi

if [ -z "$(get CLOUDOPS_AGENT_KEY_SECRET)" ]; then
  azd env set CLOUDOPS_AGENT_KEY_SECRET "$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
fi

if [ -z "$(get AZURE_CLIENT_IP)" ]; then
  ip=$(curl -fsS https://api.ipify.org 2>/dev/null || true)
  [ -n "$ip" ] && azd env set AZURE_CLIENT_IP "$ip"
fi
