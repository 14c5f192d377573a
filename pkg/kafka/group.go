package kafka

// group.go is the reading side: a consumer-group member that polls the
// table topics, resolves each record's schemas through the registry, and
// commits offsets only when told to.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Group is a member of the consumer group reading the table topics:
// cooperative-sticky balancing, read_committed (only records of committed
// producer transactions), no automatic commits. A partition never changes
// hands between its records being applied and its offsets being committed:
// a rebalance waits from the return of Poll until AllowRebalance, and then
// runs the OnRevoke hook before any partition leaves this member, where the
// caller finishes and commits what it still applies. Poll is called from
// one goroutine; Commit, DeadLetter and Lag from any.
type Group struct {
	log       *slog.Logger
	client    *kgo.Client
	dec       *decoder
	max       int
	maxRecord int // kafka.max_record_bytes
	groupID   string
	principal string // User:<name> for authorization errors; "" unknown
	dead      *groupDeadLetters
	lag       *lagTracker
	held      *holds

	hookMu   sync.Mutex
	onRevoke func(context.Context)

	// OnRegistry, when set, is called with false when the Schema Registry
	// stops answering and with true when it answers again (readiness).
	OnRegistry func(up bool)
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// NewGroup joins the group. opts are extra client options (security,
// tests).
func NewGroup(cfg *GroupConfig, log *slog.Logger, opts ...kgo.Opt) (*Group, error) {
	g := &Group{log: log, max: cfg.MaxPollRecords, maxRecord: cfg.MaxRecordBytes, groupID: cfg.GroupID, principal: cfg.Security.Principal(),
		lag: &lagTracker{log: log, groupID: cfg.GroupID, lag: map[TopicPartition]*partitionLag{}}, held: &holds{held: map[string]map[int32]kgo.EpochOffset{}}}
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.GroupID),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(TopicPattern(cfg.TopicPrefix)),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/3)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The producer writes in transactions: their commit markers take
		// offsets. Seeing them lets Commit move past them, so a drained
		// partition shows no lag.
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(cfg.TopicRefresh),
		kgo.MetadataMinAge(min(cfg.TopicRefresh, 5*time.Second)),
		kgo.OnPartitionsAssigned(g.assigned),
		kgo.OnPartitionsRevoked(g.revoked),
		kgo.OnPartitionsLost(g.lost),
		// Dead letters carry the record as it was: allow records as large
		// as the producer sends (its kafka.max_record_bytes default).
		kgo.ProducerBatchMaxBytes(deadLetterMaxBytes),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		withLog(log),
	}
	base = append(base, readLimits(cfg.MaxRecordBytes, cfg.FetchMaxBytes)...)
	client, _, regOpts, err := cfg.Security.newClient(log, base, opts...)
	if err != nil {
		return nil, err
	}
	reg, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(cfg.RegistryURL)}, regOpts...)...)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("schema registry %s: %w", cfg.RegistryURL, err)
	}
	g.client = client
	g.dead = &groupDeadLetters{client: client, admin: kadm.NewClient(client), log: log, topic: cfg.DeadLetters(), groupID: cfg.GroupID, principal: g.principal}
	g.dec = newDecoder(log, reg, func(up bool) {
		if g.OnRegistry != nil {
			g.OnRegistry(up)
		}
	})
	return g, nil
}

// TopicPattern is the regular expression of the table topics of prefix:
// every <prefix>.<database>.<table>, none of the internal <prefix>._...
func TopicPattern(prefix string) string {
	return `^` + regexp.QuoteMeta(prefix) + `\.[^_].*`
}

// TableTopic splits a topic of prefix, <prefix>.<database>.<table>, into
// its database and table parts (the names as topic names hold them);
// ok is false when topic is not of that form.
func TableTopic(prefix, topic string) (database, table string, ok bool) {
	rest, ok := strings.CutPrefix(topic, prefix+".")
	if ok {
		database, table, ok = strings.Cut(rest, ".")
	}
	return database, table, ok && database != "" && table != "" && !strings.Contains(table, ".")
}

// Schema returns the text of the registry's schema id, as a record's
// Message names it. A sink parses a schema once, by id, and asks here:
// the group holds a text only until it is asked for (decode.go), and asks
// the registry again after that.
func (g *Group) Schema(ctx context.Context, id int) (string, error) { return g.dec.take(ctx, id) }

// Ping checks that a broker answers.
func (g *Group) Ping(ctx context.Context) error { return g.client.Ping(ctx) }

// Close leaves the group and closes the client. Commit first.
func (g *Group) Close() { g.client.Close() }

// Message is a record key or value in the Confluent wire format, split.
type Message struct {
	SchemaID int    // the registry's id of its Avro schema (Group.Schema has the text)
	Body     []byte // the Avro binary body; nil for a null value (tombstone)
}

// Record is one polled record.
type Record struct {
	Partition int32
	Offset    int64
	Key       Message
	Value     Message

	raw *kgo.Record // as polled: what a dead letter carries
	at  int         // index in TopicBatch.polled
}

// TopicBatch is the records of one topic from one poll, in offset order
// per partition. Records are the decoded ones; Undecodable those that can
// never be decoded (not in the Confluent wire format, a schema id the
// registry does not know), also in offset order per partition.
type TopicBatch struct {
	Topic       string
	Records     []Record
	Undecodable []BadRecord

	polled []*kgo.Record // the records and transaction markers, in offset order: what Commit commits
}

// BadRecord is a record that cannot be applied: undecodable (from Poll) or
// refused by its target (from TopicBatch.Reject). DeadLetter sends it to the
// dead-letter topic.
type BadRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Reason    string // the strait.reason header: ReasonBadFraming, ReasonUnknownSchema or the target's reason
	Err       error

	raw  *kgo.Record      // nil for a batch too large
	at   int              // index in TopicBatch.polled
	skip *kgo.EpochOffset // where reading goes on after a batch too large
}

// Reject returns Records[i] as a bad record, for the reason and error its
// target gave.
func (tb *TopicBatch) Reject(i int, reason string, err error) BadRecord {
	r := &tb.Records[i]
	return BadRecord{Topic: tb.Topic, Partition: r.Partition, Offset: r.Offset, Reason: reason, Err: err, raw: r.raw, at: r.at}
}

// CutAt keeps only what was polled before b, which must be one of tb's
// records: committing tb then commits no offset at or after b's.
func (tb *TopicBatch) CutAt(b BadRecord) {
	n := 0
	for n < len(tb.Records) && tb.Records[n].at < b.at {
		n++
	}
	tb.Records = tb.Records[:n]
	tb.Undecodable = nil
	tb.polled = tb.polled[:b.at]
}

// Poll waits for records and returns them by topic; it returns nil, nil
// without records when wake is closed first (nil: never). Rebalances wait
// from its return until AllowRebalance: call it once the records are in
// the hands of whatever OnRevoke finishes.
func (g *Group) Poll(ctx context.Context, wake <-chan struct{}) ([]*TopicBatch, error) {
	pollCtx := ctx
	if wake != nil {
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-wake:
				cancel()
			case <-pollCtx.Done():
			}
		}()
	}
	fetches := g.client.PollRecords(pollCtx, g.max)
	if fetches.IsClientClosed() {
		return nil, errors.New("kafka client closed")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if pollCtx.Err() != nil && fetches.NumRecords() == 0 {
		// Woken. franz-go returns records or the context's error,
		// never both, so nothing polled is dropped here.
		return nil, nil
	}
	// A missing ACL does not heal by retrying: stop with what is missing.
	// A batch decompressing beyond the limits (limits.go) stops its
	// partition in franz-go until skipped: it becomes a bad record.
	var denied error
	var tooLarge []*kgo.ErrDecompressTooLarge
	fetches.EachError(func(topic string, p int32, err error) {
		if tl := (*kgo.ErrDecompressTooLarge)(nil); errors.As(err, &tl) {
			tooLarge = append(tooLarge, tl)
			return
		}
		g.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		if aerr := authorization(err, g.principal, access{topic: topic, topicOp: "READ", group: g.groupID, groupOp: "READ"}); aerr != err {
			denied = aerr
		}
	})
	if denied != nil {
		return nil, denied
	}
	g.lag.noteEnds(fetches)
	var out []*TopicBatch
	byTopic := map[string]*TopicBatch{}
	counts := map[string]int{}
	add := func(topic string, n int) {
		if _, seen := counts[topic]; !seen {
			out = append(out, &TopicBatch{Topic: topic})
		}
		counts[topic] += n
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			add(p.Topic, len(p.Records))
		}
	})
	for _, tl := range tooLarge {
		add(tl.Topic, 1)
	}
	for _, tb := range out {
		// Sized up front: growing them copied every record again.
		n := counts[tb.Topic]
		tb.Records, tb.polled = make([]Record, 0, n), make([]*kgo.Record, 0, n)
		byTopic[tb.Topic] = tb
	}
	var err error
	fetches.EachRecord(func(r *kgo.Record) {
		if err != nil {
			return
		}
		tb := byTopic[r.Topic]
		at := len(tb.polled)
		tb.polled = append(tb.polled, r)
		if r.Attrs.IsControl() {
			return
		}
		bad := func(reason string, err error) {
			tb.Undecodable = append(tb.Undecodable, BadRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Reason: reason, Err: fmt.Errorf("record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err), raw: r, at: at})
		}
		if size := recordSize(r); size > g.maxRecord {
			bad(ReasonTooLarge, fmt.Errorf("a record of %d bytes, over kafka.max_record_bytes=%d", size, g.maxRecord))
			return
		}
		rec := Record{Partition: r.Partition, Offset: r.Offset, raw: r, at: at}
		var derr error
		if rec.Key, derr = g.dec.decode(ctx, r.Key); derr == nil {
			rec.Value, derr = g.dec.decode(ctx, r.Value)
		}
		var de *decodeError
		switch {
		case errors.As(derr, &de):
			bad(de.reason, derr)
		case derr != nil:
			err = derr // the registry is unreachable: nothing can be decoded
		default:
			tb.Records = append(tb.Records, rec)
		}
	})
	for _, tl := range tooLarge {
		tb := byTopic[tl.Topic]
		// Committing past the batch commits the offset after its last
		// record: a stand-in for that record.
		last := &kgo.Record{Topic: tl.Topic, Partition: tl.Partition, Offset: tl.NextOffset - 1, LeaderEpoch: tl.Epoch}
		tb.Undecodable = append(tb.Undecodable, BadRecord{Topic: tl.Topic, Partition: tl.Partition, Offset: tl.Offset,
			Reason: ReasonBatchTooLarge, Err: fmt.Errorf("records %s/%d@%d to %d: a batch decompressing to more than kafka.max_record_bytes=%d, or to more than %d times its size",
				tl.Topic, tl.Partition, tl.Offset, tl.NextOffset-1, g.maxRecord, maxRatio),
			at: len(tb.polled), skip: &kgo.EpochOffset{Epoch: tl.Epoch, Offset: tl.NextOffset}})
		tb.polled = append(tb.polled, last)
	}
	return out, err
}

// recordSize is a record's key, value and header bytes.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Commit commits, for every partition in batches, the offset after its
// last record: call it only once every record of batches is applied (or
// dead-lettered).
func (g *Group) Commit(ctx context.Context, batches []*TopicBatch) error {
	var recs []*kgo.Record
	for _, tb := range batches {
		recs = append(recs, tb.polled...)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := g.client.CommitRecords(ctx, recs...); err != nil {
		return fmt.Errorf("commit offsets: %w", authorization(err, g.principal, access{topicOp: "READ", group: g.groupID, groupOp: "READ"}))
	}
	g.lag.noteCommitted(recs)
	return nil
}

// AllowRebalance lets a waiting rebalance go on; call it after each Poll,
// once what it returned is where OnRevoke finds it.
func (g *Group) AllowRebalance() { g.client.AllowRebalance() }

// OnRevoke sets f to run when partitions are about to leave this member
// (revoked in a rebalance, or lost), before they do: f finishes the work
// on polled records and commits it. Rebalances wait for f; Poll does not
// return while it runs. Set it before the first Poll.
func (g *Group) OnRevoke(f func(ctx context.Context)) {
	g.hookMu.Lock()
	defer g.hookMu.Unlock()
	g.onRevoke = f
}

// assigned logs a rebalance's new partitions: one line per rebalance
// (franz-go's own account of it is at DEBUG, see withLog).
func (g *Group) assigned(_ context.Context, _ *kgo.Client, added map[string][]int32) {
	if len(added) > 0 {
		g.log.Info("partitions assigned", rebalanced(g.groupID, added)...)
		g.lag.assigned()
	}
}

// lost logs partitions lost (the member was out of the group too long:
// another may have them already), then handles them as revoked.
func (g *Group) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	if len(lost) > 0 {
		g.log.Warn("partitions lost", rebalanced(g.groupID, lost)...)
	}
	g.release(ctx, cl, lost)
}

// rebalanced is the attributes of a rebalance's log line: the group, how
// many topics and partitions moved, and the topics (a few).
func rebalanced(group string, moved map[string][]int32) []any {
	n := 0
	for _, ps := range moved {
		n += len(ps)
	}
	topics := slices.Sorted(maps.Keys(moved))
	const shown = 5
	if len(topics) > shown {
		topics = append(topics[:shown], fmt.Sprintf("and %d more", len(topics)-shown))
	}
	return []any{"group", group, "partitions", n, "topics", strings.Join(topics, ",")}
}

// revoked logs partitions revoked in a rebalance, or as the member
// leaves, and releases them.
func (g *Group) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	if len(revoked) > 0 {
		g.log.Info("partitions revoked", rebalanced(g.groupID, revoked)...)
	}
	g.release(ctx, cl, revoked)
}

// release runs the OnRevoke hook, then forgets the partitions' lag and
// held offsets.
func (g *Group) release(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	g.hookMu.Lock()
	f := g.onRevoke
	g.hookMu.Unlock()
	if f != nil {
		f(ctx)
	}
	g.lag.forget(lost)
	g.held.forget(lost)
}

// Pause stops fetching topic until the process restarts: its table stopped
// and its uncommitted records are read again after the restart.
func (g *Group) Pause(topic string) { g.client.PauseFetchTopics(topic) }

// Hold stops fetching tb's topic and remembers, for each partition of tb,
// the offset of its first record: reading starts there again at Release.
// Call it for every polled batch of the topic that is not applied, in
// poll order: a partition keeps the first offset held. Nothing is kept in
// memory but the offsets: Kafka holds the records. Safe from any
// goroutine.
func (g *Group) Hold(tb *TopicBatch) {
	g.client.PauseFetchTopics(tb.Topic)
	g.held.hold(tb)
}

// Release moves the held partitions of topic back to their held offsets
// and fetches the topic again. Call it from the goroutine that polls,
// between Poll and AllowRebalance (no revoke runs then), once no batch of
// the topic is being applied. Partitions that left this member meanwhile
// are skipped: their next owner reads from the committed offset.
func (g *Group) Release(topic string) {
	if h := g.held.take(topic); len(h) > 0 {
		g.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: h})
	}
	g.client.ResumeFetchTopics(topic)
}

// Lag returns, for every partition this member reads and has fetched from,
// how many offsets lie between its committed offset and the end a
// read_committed reader can reach (the last stable offset of the latest
// fetch). It counts transaction markers too, so it is an upper bound of the
// changes still to apply. Safe from any goroutine.
func (g *Group) Lag() map[TopicPartition]int64 { return g.lag.lags() }

// DeadLetterTopic returns the group's dead-letter topic.
func (g *Group) DeadLetterTopic() string { return g.dead.topic }

// DeadLetter writes bad to the dead-letter topic and returns once Kafka
// acknowledged every one (then their offsets may be committed); see
// groupDeadLetters.send for what a dead letter holds. Safe from any
// goroutine.
func (g *Group) DeadLetter(ctx context.Context, bad []BadRecord) error { return g.dead.send(ctx, bad) }
