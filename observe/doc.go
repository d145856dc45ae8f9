// Package observe holds keygate's Grafana dashboard (grafana-dashboard.json)
// and Prometheus alerting rules (alerts.yaml). It has no code: its tests
// parse both files and check every PromQL expression in them against the
// metrics keygate's registry really exports.
package observe
