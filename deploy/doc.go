// Package deploy holds what runs strait outside this repository's tests:
// the Dockerfile of both binaries (docker/), Kubernetes manifests (k8s/)
// and the Helm chart making the same objects (helm/strait/), Terraform for
// the RDS parameter groups (terraform/aws) and for BigQuery
// (terraform/gcp), applied separately, Prometheus alert rules
// (prometheus/), the Grafana dashboard (grafana/) and the files of the
// root docker-compose.yml stack (compose/).
//
// It has no Go code of its own yet; its tests parse every one of those
// files and check them against the binaries: configuration keys and
// environment variables the binaries know, their default ports, the metric
// names their sources export, and references between the files. The chart
// is rendered and linted by the real helm, which the tests require.
package deploy
