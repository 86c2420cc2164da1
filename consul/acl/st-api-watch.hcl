# The blocking query of the `st-api` watch itself (GET /v1/health/service/st-api, made by the agent,
# not by the watcher). A watch runs with its `token` parameter, else the agent's default token
# (acl.tokens.default); consul/agent/st-api-watch.json sets no token so that it carries no secret,
# so this is the policy of acl.tokens.default on the agents that run the watch.

service "st-api" {
  policy = "read"
}

# Instances on nodes the token cannot read are filtered out of the answer, and the watcher needs
# every instance (no passingonly): read on every node.
node_prefix "" {
  policy = "read"
}
