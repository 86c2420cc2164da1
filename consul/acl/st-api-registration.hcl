# acl.tokens.config_file_service_registration on st-api nodes: the agent registers the `st-api`
# service of consul/agent/st-api-service.json (and its HTTP check) with this token.
# The node's own registration uses acl.tokens.agent (a node identity), not this policy.

service "st-api" {
  policy = "write"
}
