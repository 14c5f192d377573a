package kafka

import (
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitioner sends keyed records to murmur2(key) mod n — the same
// partition Kafka's Java client picks, so all changes of one row land in one
// partition and other tools agree with us — and records without a key (rows
// of tables without a primary key) to partition 0, which keeps their order.
func partitioner() kgo.Partitioner {
	return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		return func(r *kgo.Record, n int) int {
			if r.Key == nil {
				return 0
			}
			return int(murmur2(r.Key)&0x7fffffff) % n
		}
	})
}

// murmur2 is Kafka's variant of MurmurHash2 (seed 0x9747b28c), as in the Java
// client's Utils.murmur2.
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
