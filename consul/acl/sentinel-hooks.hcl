# Token of sentinel-hooks (client-reconfig, notification, reconcile) on each Redis host:
# CONSUL_HTTP_TOKEN in the Sentinel unit's environment file and in the reconcile timer's.
# Assumes acl.default_policy = "deny". Every rule below is exercised by test/consul/acl.test.ts.

# PUT /v1/agent/service/register (service:write on the name), PUT /v1/agent/check/update/<id>
# (service:write on the check's service), GET /v1/agent/service/<id> and the redis checks in
# GET /v1/agent/checks (service:read, implied by write).
service "redis" {
  policy = "write"
}

# GET /v1/health/service/redis?tag=master before a promotion ("demote before promote"). Entries on
# nodes the token cannot read are silently dropped, which would hide the old master and let two
# instances carry the master tag: read on every node that runs Redis.
node_prefix "" {
  policy = "read"
}

# notification: GET and PUT ?cas= of redis/sentinel/events/<master-name> (kvPrefix, default redis/sentinel).
key_prefix "redis/sentinel/events/" {
  policy = "write"
}
