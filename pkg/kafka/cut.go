package kafka

// cut.go: what the consumer group's "applied through" watermark is
// computed from (pkg/apply's watermark): the producer's committed
// checkpoints, the ends of the table topics and the group's committed
// offsets.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkpointLookback is how many offsets before the end of
// <prefix>._checkpoint a Cuts starts reading: a few transactions' worth
// (each takes a checkpoint record and a commit marker), so that the last
// checkpoint is among them without reading the topic's history.
const checkpointLookback = 64

// Cuts reads the facts a consistent cut across the table topics is made
// of. The producer writes each checkpoint in the same transaction as the
// change records it covers, so once a checkpoint is seen committed, the
// ends (high watermarks) of the table topics listed afterwards lie past
// every record of the source transactions it covers; a group whose
// committed offsets reach those ends has applied them all. Call its
// methods from one goroutine.
type Cuts struct {
	client  *kgo.Client
	admin   *kadm.Client
	topics  *regexp.Regexp // the table topics
	prefix  string
	groupID string
	last    *StateRecord // the newest checkpoint read
	maxSize int          // kafka.max_record_bytes
}

// NewCuts starts reading the checkpoints of cfg's source, from near the
// end of <prefix>._checkpoint. opts are extra client options (tests).
func NewCuts(cfg *GroupConfig, log *slog.Logger, opts ...kgo.Opt) (*Cuts, error) {
	topic := cfg.TopicPrefix + "._checkpoint"
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		// Only records of committed transactions: a checkpoint counts
		// once its transaction, and so its change records, are committed.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtEnd().Relative(-checkpointLookback)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		withLog(log),
	}
	base = append(base, readLimits(cfg.MaxRecordBytes, cfg.FetchMaxBytes)...)
	client, _, _, err := cfg.Security.newClient(log, base, opts...)
	if err != nil {
		return nil, err
	}
	return &Cuts{client: client, admin: kadm.NewClient(client), topics: regexp.MustCompile(TopicPattern(cfg.TopicPrefix)),
		prefix: cfg.TopicPrefix, groupID: cfg.GroupID, maxSize: cfg.MaxRecordBytes}, nil
}

// Close closes the client.
func (c *Cuts) Close() { c.client.Close() }

// Checkpoint returns the newest committed checkpoint record of the source
// read so far, nil before the first. It reads what has arrived since the
// last call, fetch after fetch (franz-go holds one ahead) until none
// comes within a moment, for at most a second: a producer committing
// faster than that is caught up with over the next calls. Its body is the
// producer's, to decode as untrusted input.
func (c *Cuts) Checkpoint(ctx context.Context) (*StateRecord, error) {
	budget, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var err error
	for budget.Err() == nil {
		wait, stop := context.WithTimeout(budget, 20*time.Millisecond)
		fetches := c.client.PollRecords(wait, 0)
		stop()
		fetches.EachError(func(topic string, p int32, e error) {
			// The waits' ends come as errors too: nothing more arrived.
			if !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, context.Canceled) {
				err = fmt.Errorf("read %s: %w", topic, e)
			}
		})
		if err != nil || fetches.NumRecords() == 0 {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != c.prefix || len(r.Key)+len(r.Value) > c.maxSize {
				return
			}
			if sr, serr := stateRecord(r); serr == nil {
				c.last = sr
			} else {
				err = serr
			}
		})
	}
	return c.last, cmp.Or(err, ctx.Err())
}

// Ends returns the end offset (high watermark) of every partition of every
// table topic. Call it after Checkpoint: the ends then lie past every
// record the checkpoint covers.
//
// Every request goes to a broker directly: a metadata request through the
// client would have it cache the metadata of every topic (about 1.2 KB a
// topic, for as long as the consumer runs, next to the group client's own
// copy), and kadm's ListEndOffsets asks for it too.
func (c *Cuts) Ends(ctx context.Context) (map[TopicPartition]int64, error) {
	parts, leaders, err := c.tablePartitions(ctx)
	if err != nil {
		return nil, err
	}
	byLeader := map[int32]map[string][]int32{}
	for tp, leader := range leaders {
		if byLeader[leader] == nil {
			byLeader[leader] = map[string][]int32{}
		}
		byLeader[leader][tp.Topic] = append(byLeader[leader][tp.Topic], tp.Partition)
	}
	ends := make(map[TopicPartition]int64, len(leaders))
	for leader, topics := range byLeader {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		for topic, ps := range topics {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			for _, p := range ps {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition, rp.Timestamp = p, -1 // -1: the end
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, c.client.Broker(int(leader)))
		if err != nil {
			return nil, fmt.Errorf("list the ends of the table topics: %w", err)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("end of %s/%d: %w", t.Topic, p.Partition, err)
				}
				ends[TopicPartition{t.Topic, p.Partition}] = p.Offset
			}
		}
	}
	// A partition without an answer has an end nobody listed: no cut can
	// be vouched for.
	for topic, n := range parts {
		for p := range int32(n) {
			if _, ok := ends[TopicPartition{topic, p}]; !ok {
				return nil, fmt.Errorf("no end offset for %s/%d", topic, p)
			}
		}
	}
	return ends, nil
}

// tablePartitions returns the table topics and their partition counts as
// every broker knows them, asked now: not the client's cached metadata,
// which may predate a topic the producer has just created and written
// to, and not one broker's alone, which may learn of a new topic after
// its leader (whom the producer wrote to). With them, each partition's
// leader, as the broker with the newest leader epoch of it says: a
// partition some broker knows of but none leads has none.
func (c *Cuts) tablePartitions(ctx context.Context) (map[string]int, map[TopicPartition]int32, error) {
	brokers := kmsg.NewPtrMetadataRequest()
	brokers.Topics = []kmsg.MetadataRequestTopic{} // none: the brokers only, nothing cached
	first, err := brokers.RequestWith(ctx, c.client)
	if err != nil {
		return nil, nil, fmt.Errorf("list the brokers: %w", err)
	}
	parts := map[string]int{}
	type lead struct{ leader, epoch int32 }
	leads := map[TopicPartition]lead{}
	for _, b := range first.Brokers {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, c.client.Broker(int(b.NodeID))) // every topic
		if err != nil {
			return nil, nil, fmt.Errorf("list the table topics: %w", err)
		}
		for _, t := range resp.Topics {
			if t.Topic == nil || !c.topics.MatchString(*t.Topic) {
				continue
			}
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return nil, nil, fmt.Errorf("metadata of %s: %w", *t.Topic, err)
			}
			parts[*t.Topic] = max(parts[*t.Topic], len(t.Partitions))
			for _, p := range t.Partitions {
				tp := TopicPartition{*t.Topic, p.Partition}
				if l, ok := leads[tp]; p.Leader >= 0 && (!ok || p.LeaderEpoch > l.epoch) {
					leads[tp] = lead{p.Leader, p.LeaderEpoch}
				}
			}
		}
	}
	leaders := make(map[TopicPartition]int32, len(leads))
	for tp, l := range leads {
		leaders[tp] = l.leader
	}
	return parts, leaders, nil
}

// Committed returns the group's committed offset of every partition it
// committed one for.
func (c *Cuts) Committed(ctx context.Context) (map[TopicPartition]int64, error) {
	resp, err := c.admin.FetchOffsets(ctx, c.groupID)
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[TopicPartition]int64{}, nil // nothing committed yet
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", c.groupID, err)
	}
	out := map[TopicPartition]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 {
			out[TopicPartition{o.Topic, o.Partition}] = o.At
		}
	})
	return out, nil
}
