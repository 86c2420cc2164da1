# st-api itself sends no token: it only asks Consul DNS for master.redis.service.consul (and, with
# redis.discovery.useSrv, the SRV record and the <node>.node.<dc>.consul targets). The agent answers
# DNS with acl.tokens.dns (else acl.tokens.default), so this is the policy of the DNS token on the
# agents of st-api nodes.

# redis service lookups (A and SRV).
service "redis" {
  policy = "read"
}

# Service answers are filtered by node:read, and SRV targets are node names: read on every node
# that runs Redis (node names are deployment-specific, hence the empty prefix).
node_prefix "" {
  policy = "read"
}
