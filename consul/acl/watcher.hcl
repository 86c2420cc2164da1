# Token of the DNS watcher (`watcher` CLI), in the file dns-watcher.json names (`consulTokenFile`):
# used by `watcher handle` (run by the st-api watch), the `watcher reconcile` timer, and operators
# running plan/status/exclude/include. Never in the Consul agent's environment, where it would be
# every watch's token (deploy/systemd/consul.service.d/st-dns-watcher.conf).
# Assumes acl.default_policy = "deny". Every rule below is exercised by test/consul/acl.test.ts.

# GET /v1/health/service/st-api (reconcile, plan, status; a stale `handle` re-reads it).
service "st-api" {
  policy = "read"
}

# The same query drops every instance whose node the token cannot read, and the watcher must see
# every st-api node (floor, status). Node names are deployment-specific, hence the empty prefix.
node_prefix "" {
  policy = "read"
}

# st-api/dns/excluded/<node>, st-api/dns/status and the lock st-api/dns/lock (kvPrefix, default st-api/dns).
key_prefix "st-api/dns/" {
  policy = "write"
}

# PUT /v1/session/create and /v1/session/destroy for the lock: session:write on the node the session
# belongs to, which is the agent's own node. The watcher runs on a few agents; a per-host policy
# `session "<node>" { policy = "write" }` is stricter if you mint one token per host.
session_prefix "" {
  policy = "write"
}
