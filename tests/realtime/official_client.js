// The official @microsoft/signalr client, driven by tests/realtime/test_official_client.py.
//
// Usage: node official_client.js <apiBase> <headersJSON> <group> [<group>...]
// <headersJSON> carries the caller's identity: {"x-ms-client-principal": ...} straight to
// the functions, or {"Cookie": "StaticWebAppsAuthCookie=..."} through the local host.
// Connects through our negotiate function (<apiBase>/api/negotiate), joins each group via
// POST <apiBase>/api/realtime/groups/{group}, prints {"event":"joined",...} and then every
// received event as one JSON line; a "stop" invocation makes it disconnect and exit.
"use strict";
const signalR = require("@microsoft/signalr");

const [apiBase, headersJson, ...groups] = process.argv.slice(2);
const headers = JSON.parse(headersJson);
const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

async function main() {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${apiBase}/api`, { headers })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  for (const target of ["taskUpdated", "taskLog", "agentUpdated"]) {
    connection.on(target, (...args) => print({ event: "message", target, args }));
  }
  connection.on("stop", async () => {
    await connection.stop();
    print({ event: "stopped" });
    process.exit(0);
  });
  connection.onclose((error) => print({ event: "closed", error: error ? String(error) : null }));
  await connection.start();
  for (const group of groups) {
    const resp = await fetch(`${apiBase}/api/realtime/groups/${encodeURIComponent(group)}`, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ connectionId: connection.connectionId }),
    });
    if (resp.status !== 200) {
      print({ event: "join-failed", group, status: resp.status, body: await resp.text() });
      process.exit(2);
    }
  }
  print({ event: "joined", connectionId: connection.connectionId, groups });
}

main().catch((err) => {
  print({ event: "error", error: String(err) });
  process.exit(1);
});
