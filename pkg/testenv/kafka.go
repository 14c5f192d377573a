package testenv

import (
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// ProduceError is a broker's answer to produce request pr refusing every
// partition with error code: for kfake control functions that inject
// produce faults.
func ProduceError(pr *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	for _, tp := range pr.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
		for _, p := range tp.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
