package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// TableTopic returns <prefix>.<database>.<table>. Characters Kafka does not
// allow in topic names ([a-zA-Z0-9._-] only) become '_'.
func (pub *publisher) TableTopic(t *cdc.Table) string {
	return pub.cfg.TopicPrefix + "." + topicPart(t.Database) + "." + topicPart(t.Name)
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
	if p.topics[topic] {
		return nil
	}
	configs := map[string]*string{"cleanup.policy": &cleanup}
	if cleanup != "delete" {
		lag := strconv.FormatInt(p.cfg.MinCompactionLag.Milliseconds(), 10)
		configs["min.compaction.lag.ms"] = &lag
	}
	maxBytes := strconv.Itoa(p.cfg.MaxRecordBytes)
	configs["max.message.bytes"] = &maxBytes
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
