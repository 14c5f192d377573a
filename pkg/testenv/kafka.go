package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"
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

// StartBenchRegistry starts a registry for benchmarks of many tables: it
// answers a schema's registration from a map keyed by its text, as a real
// registry finds a known schema by its hash. srfake compares a new schema
// with every schema it holds, two JSON round trips each: 20,000 tables'
// 40,000 subjects would take hours to register, and the time would be
// the fake's, not strait's. New schemas are seeded into srfake without a
// compatibility check (a benchmark's schemas do not change), so its other
// endpoints (schemas by id) see them. Tests keep StartRegistry's checks.
func StartBenchRegistry() *srfake.Registry {
	reg := srfake.New()
	reg.Intercept(registerByText(reg))
	return reg
}

// registerByText answers POST /subjects/{subject}/versions of reg by a map
// from the schema's text.
func registerByText(reg *srfake.Registry) srfake.Interceptor {
	var mu sync.Mutex
	ids := map[string]int{}      // subject + "\x00" + schema → id
	versions := map[string]int{} // subject → versions registered
	next := 1
	return func(w http.ResponseWriter, r *http.Request) bool {
		subject, ok := strings.CutPrefix(r.URL.Path, "/subjects/")
		if subject, ok = strings.CutSuffix(subject, "/versions"); !ok || r.Method != http.MethodPost || strings.Contains(subject, "/") {
			return false
		}
		var sch sr.Schema
		if err := json.NewDecoder(r.Body).Decode(&sch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		k := subject + "\x00" + sch.Schema
		id, ok := ids[k]
		if !ok {
			id, next = next, next+1
			versions[subject]++
			reg.SeedSchema(subject, versions[subject], id, sch)
			ids[k] = id
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		fmt.Fprintf(w, `{"id":%d}`, id)
		return true
	}
}

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
