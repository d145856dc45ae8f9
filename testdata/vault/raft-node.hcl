# One node of a test Vault cluster with integrated Raft storage, filled in by
# internal/vaulttest (cluster.go) with Go's text/template. Loopback only,
# plain HTTP (TLS is covered by vaulttest.TLSServer). Not for production.

storage "raft" {
  path    = "{{.DataDir}}"
  node_id = "{{.NodeID}}"

  # Raft's timing as HashiCorp recommends for production (the default, 5,
  # is for slow development machines): a follower starts an election after
  # about 1 s without the leader instead of 5 s.
  performance_multiplier = 1

  # Test tuning, so start-up and rejoin take seconds: autopilot checks
  # server health every 500 ms (default 2 s) and promotes stable non-voters
  # every 1 s (default 10 s). Neither changes how fast an election is.
  autopilot_update_interval    = "500ms"
  autopilot_reconcile_interval = "1s"
{{- range .Peers}}

  retry_join {
    leader_api_addr = "{{.}}"
  }
{{- end}}
}

listener "tcp" {
  address         = "{{.APIAddr}}"
  cluster_address = "{{.ClusterAddr}}"
  tls_disable     = true
}

api_addr      = "http://{{.APIAddr}}"
cluster_addr  = "https://{{.ClusterAddr}}"
disable_mlock = true
ui            = false
