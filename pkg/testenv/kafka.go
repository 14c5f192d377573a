package testenv

import (
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// StartKafka starts an in-process Kafka cluster speaking the real protocol
// (transactions, groups, compaction settings) on free loopback ports.
// Close it with Close.
func StartKafka(opts ...kfake.Opt) (*kfake.Cluster, error) {
	base := []kfake.Opt{kfake.NumBrokers(1)}
	return kfake.NewCluster(append(base, opts...)...)
}

// StartRegistry starts an in-process Confluent-compatible Schema Registry.
// Its URL is reg.URL(); close it with Close.
func StartRegistry() *srfake.Registry { return srfake.New() }
