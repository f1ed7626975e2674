// Package deploy holds no code: its folder holds the deployment files (the
// systemd unit, the Dockerfile, the compose file, the contract schema, the
// Prometheus alerts and the Grafana dashboard), and its tests check them with
// the tools that read them: systemd-analyze, docker-compose and promtool. The
// metrics the alerts and the dashboard query are checked against the /metrics
// of a worker started on the test Redis and MariaDB.
package deploy
