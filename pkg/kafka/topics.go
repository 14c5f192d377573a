package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// TableTopic returns <prefix>.<database>.<table>. Characters Kafka does not
// allow in topic names ([a-zA-Z0-9._-] only) become '_'.
func (pub *publisher) TableTopic(t *cdc.Table) string {
	return pub.tableTopic(t.Database, t.Name)
}

func (pub *publisher) tableTopic(db, table string) string {
	return pub.cfg.TopicPrefix + "." + topicPart(db) + "." + topicPart(table)
}

// topicBatch is the most topics one CreateTopics request asks for.
const topicBatch = 500

// CreateTableTopics creates the topics of tables (database.table, each
// with a primary key) that do not exist yet, with the configured
// partitions and cleanup policy, topicBatch to a request: a snapshot of
// 20,000 tables would otherwise wait for a CreateTopics round trip at each
// table's first change; then it has the client learn their partitions, in
// one metadata request (preload). It returns how many it created. A topic
// it cannot create (no CREATE ACL, a refusal) is left to its table's first
// change, which retries and says why.
func (pub *publisher) CreateTableTopics(ctx context.Context, tables []string) (int, error) {
	p := pub.p
	var todo []string
	for _, t := range tables {
		db, name, _ := strings.Cut(t, ".")
		if topic := pub.tableTopic(db, name); !p.topics[topic] {
			todo = append(todo, topic)
		}
	}
	created := 0
	for len(todo) > 0 {
		batch := todo[:min(topicBatch, len(todo))]
		todo = todo[len(batch):]
		resps, err := p.admin.CreateTopics(ctx, int32(pub.cfg.Partitions), int16(p.cfg.ReplicationFactor), p.topicConfigs(pub.cfg.CleanupPolicy), batch...)
		if err != nil {
			return created, fmt.Errorf("create %d topics: %w", len(batch), err)
		}
		for topic, r := range resps {
			switch {
			case r.Err == nil:
				created++
				p.topics[topic] = true
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				p.topics[topic] = true
			}
		}
	}
	topics := make([]string, 0, len(tables))
	for _, t := range tables {
		db, name, _ := strings.Cut(t, ".")
		if topic := pub.tableTopic(db, name); p.topics[topic] {
			topics = append(topics, topic)
		}
	}
	p.preload(ctx, topics)
	return created, nil
}

// topicConfigs are the configs of a topic of the cleanup policy.
func (p *producer) topicConfigs(cleanup string) map[string]*string {
	configs := map[string]*string{"cleanup.policy": &cleanup}
	if cleanup != "delete" {
		lag := strconv.FormatInt(p.cfg.MinCompactionLag.Milliseconds(), 10)
		configs["min.compaction.lag.ms"] = &lag
	}
	maxBytes := strconv.Itoa(p.cfg.MaxRecordBytes)
	configs["max.message.bytes"] = &maxBytes
	return configs
}

func topicPart(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '.' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			b[i] = '_'
		}
	}
	return string(b)
}

// ensureTopic creates topic with the configured partitions, replication
// factor and cleanup policy unless it exists. Table topics use the
// configured policy; internal topics say theirs.
func (p *producer) ensureTopic(ctx context.Context, topic string, partitions int32, cleanup string) error {
	if !p.listed {
		p.listed = true
		p.learnTopics(ctx)
	}
	if p.topics[topic] {
		return nil
	}
	configs := p.topicConfigs(cleanup)
	var err error
	giveUp := time.Now().Add(time.Minute)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		var resp kadm.CreateTopicResponse
		resp, err = p.admin.CreateTopic(ctx, partitions, int16(p.cfg.ReplicationFactor), configs, topic)
		if err == nil {
			err = resp.Err
		}
		// A cluster changing its controller or brokers answers with
		// retriable errors (NOT_CONTROLLER, ...): try again.
		if err == nil || !kerr.IsRetriable(err) || ctx.Err() != nil || time.Now().After(giveUp) {
			break
		}
		p.log.Warn("create topic: retrying", "topic", topic, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	exists := errors.Is(err, kerr.TopicAlreadyExists)
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		exists = topicExists(ctx, p.admin, topic)
	}
	if err != nil && !exists {
		p.metrics.errors.WithLabelValues("topic").Inc()
		return fmt.Errorf("create topic %s: %w", topic, authorization(err, p.principal, access{topic: topic, topicOp: "CREATE", clusterOp: "CREATE"}))
	}
	if err == nil {
		p.log.Info("topic created", "topic", topic, "partitions", partitions, "cleanup.policy", cleanup)
	}
	p.topics[topic] = true
	return nil
}

// learnTopics notes the topics of this prefix that exist, from one
// listing: after a restart every table's first change would otherwise ask
// for its topic again, a CreateTopics round trip each (20,000 of them with
// 20,000 tables). A listing that fails leaves each to its first change.
func (p *producer) learnTopics(ctx context.Context) {
	td, err := p.admin.ListTopics(ctx)
	if err != nil {
		p.log.Debug("list topics: each is created or found at its first change", "err", err)
		return
	}
	var tables []string
	for name, t := range td {
		if t.Err == nil && strings.HasPrefix(name, p.cfg.TopicPrefix+".") {
			p.topics[name] = true
			if !strings.HasPrefix(name, p.cfg.TopicPrefix+"._") {
				tables = append(tables, name)
			}
		}
	}
	p.preload(ctx, tables)
}

// preload has the client learn the partitions of topics it has not
// produced to, in one metadata request, ahead of their first records.
//
// Why: franz-go asks for the metadata of every topic it produces to
// whenever one is new to it (kgo's metadata update lists them all), and a
// commit waits for the answer. A table's first record is a new topic, so
// with thousands of tables a snapshot, or the catch-up after a restart,
// spent its time in metadata requests each as long as the tables so far:
// 3,000 tables snapshotted in 30–58 s, 14 s with this (BenchmarkManyTables).
// The client has no call to add topics: preload produces to each a record
// whose context is already cancelled. The client notes the topic and fails
// the record, never sent: a record cancelled before its partition sent
// anything fails with everything buffered for that partition
// (kgo.Client.Produce). So preload takes only topics the client never
// produced to, where nothing else is buffered, and waits for the records
// to fail (Flush) before any change record follows. TestPreloadSendsNothing
// checks it against kfake. A preload that fails leaves each topic to its
// first record, as before.
func (p *producer) preload(ctx context.Context, topics []string) {
	if p.endCommit(ctx) != nil {
		return // its error fails the run
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	n := 0
	for _, t := range topics {
		if p.txn.produced[t] || p.txn.preloaded[t] {
			continue
		}
		if n == 0 {
			if err := p.begin(); err != nil {
				p.log.Debug("topics not preloaded: each is learnt at its first record", "err", err)
				return
			}
		}
		if p.txn.preloaded == nil {
			p.txn.preloaded = map[string]bool{}
		}
		p.txn.preloaded[t] = true
		p.client.Produce(done, &kgo.Record{Topic: t}, func(*kgo.Record, error) {})
		n++
	}
	if n == 0 {
		return
	}
	if err := p.client.Flush(ctx); err != nil {
		p.log.Debug("topics not preloaded: each is learnt at its first record", "topics", n, "err", err)
	}
}

// topicExists reports whether topic exists and may be described. A
// principal without CREATE hears TOPIC_AUTHORIZATION_FAILED from
// CreateTopics even for a topic that exists (Kafka checks CREATE first):
// topics created beforehand need no CREATE ACL.
func topicExists(ctx context.Context, adm *kadm.Client, topic string) bool {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false
	}
	t, ok := td[topic]
	return ok && t.Err == nil
}
