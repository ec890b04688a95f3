# OpenBao server for `docker compose --profile vault` (deploy/compose.yaml).
# Integrated storage on the openbao-data volume; initialise and unseal it once
# (`bao operator init`, docs/deploy.md). TLS is off on the compose network only: the
# port is published on 127.0.0.1; terminate TLS in front of it before exposing it.
ui            = false
disable_mlock = true
api_addr      = "http://openbao:8200"
cluster_addr  = "http://openbao:8201"

storage "raft" {
  path    = "/openbao/file"
  node_id = "openbao-1"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}
