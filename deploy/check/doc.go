// Package check holds the checks of the deployment material in deploy/ that
// can run on a machine without a container engine or a cluster (`make
// test`): the Kubernetes manifests and the compose file decode strictly into
// their types, every IKD_* variable they set is a setting of some program,
// every image is pinned, every NATS configuration passes the real
// `nats-server -t`, and every ClickHouse panel of the Grafana dashboards runs
// against the views. It has tests only.
package check
