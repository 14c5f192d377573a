package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

var visits = &cdc.Table{Database: "shop", Name: "visits", PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Type: cdc.TypeInt64},
	{Name: "day", Type: cdc.TypeDate, Nullable: true},
}}

// farDay is a DATE the source and Avro carry but BigQuery refuses: about
// the year 12900, beyond BigQuery's 9999-12-31.
const farDay = 4_000_000

// TestBadRecordsDeadLetter puts every kind of bad record between good ones
// of one partition — a value not in the Confluent wire format, an unknown
// schema id, a corrupt Avro body, a row over the AppendRows request limit, a
// row BigQuery rejects — and checks that each ends in the group's
// dead-letter topic with its source topic, partition, offset and reason and
// its bytes unchanged, that every good record of those tables and of another
// table is applied, that the bad records are counted, and that every offset,
// the bad ones included, is committed.
func TestBadRecordsDeadLetter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, dataset = "dlq", "g", "ds_dlq"
	usersTopic, visitsTopic, ordersTopic := prefix+".shop.users", prefix+".shop.visits", prefix+".shop.orders"
	pub := newPublisherPartitions(t, prefix, 1)
	raw := newRawProducer(t)

	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	first := readTopic(t, ctx, usersTopic, 1)[0]
	valueID := int(binary.BigEndian.Uint32(first.Value[1:5]))
	unknownID := make([]byte, 5, 8)
	binary.BigEndian.PutUint32(unknownID[1:], 999999)
	want := map[int64]string{ // users offset → reason
		raw.produce(ctx, usersTopic, first.Key, []byte("not avro")):                              kafka.ReasonBadFraming,
		raw.produce(ctx, usersTopic, first.Key, append(unknownID, 2, 4, 6)):                      kafka.ReasonUnknownSchema,
		raw.produce(ctx, usersTopic, first.Key, append(confluent(valueID), first.Value[5:8]...)): "undecodable",
	}
	pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))
	pub.publish(ctx, ins(users, user(3, strings.Repeat("x", 1<<20+1000), "3.00")...)) // row_too_large
	pub.publish(ctx, ins(users, user(4, "d@x", "4.00")...))
	pub.publish(ctx, ins(visits, cdc.Int(1), cdc.Int(1)), ins(visits, cdc.Int(2), cdc.Int(farDay)), ins(visits, cdc.Int(3), cdc.Int(3)))
	pub.publish(ctx, ins(orders, cdc.Str("t"), cdc.Int(1), cdc.Null))

	source := map[string]*kgo.Record{} // topic/partition/offset → record
	for _, topic := range []string{usersTopic, visitsTopic} {
		for _, r := range readTopic(t, ctx, topic, -1) {
			source[fmt.Sprintf("%s/%d/%d", topic, r.Partition, r.Offset)] = r
		}
	}
	for _, r := range readTopic(t, ctx, usersTopic, -1) {
		if len(r.Value) > 1<<20 {
			want[r.Offset] = "row_too_large"
		}
	}

	c := startConsumer(t, append(consumerArgs(prefix, group, dataset), "-bigquery.max_request_bytes", strconv.Itoa(1<<20)))
	waitRows(t, ctx, dataset, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00"), userRow(4, "d@x", "4.00")})
	waitRows(t, ctx, dataset, "shop_visits", []map[string]any{{"id": int64(1), "day": civilEpoch.Date.AddDays(1)}, {"id": int64(3), "day": civilEpoch.Date.AddDays(3)}})
	waitRows(t, ctx, dataset, "shop_orders", []map[string]any{{"tenant": "t", "id": int64(1), "at": nil}})
	waitCommitted(t, ctx, group, usersTopic, visitsTopic, ordersTopic)

	letters := readTopic(t, ctx, prefix+"._dead_letter."+group, len(want)+1)
	got := map[string]string{} // source topic/offset → reason
	for _, l := range letters {
		h := headers(l)
		key := fmt.Sprintf("%s/%s/%s", h["strait.topic"], h["strait.partition"], h["strait.offset"])
		got[h["strait.topic"]+"/"+h["strait.offset"]] = h["strait.reason"]
		if h["strait.group"] != group || h["strait.error"] == "" || h["strait.timestamp"] == "" {
			t.Errorf("dead letter of %s: headers %v, want strait.group %q, strait.error and strait.timestamp", key, h, group)
		}
		if src := source[key]; src == nil {
			t.Errorf("dead letter names %s, which is no source record", key)
		} else if string(l.Key) != string(src.Key) || string(l.Value) != string(src.Value) {
			t.Errorf("dead letter of %s: key %q value of %d bytes, want the source's %q and %d bytes", key, l.Key, len(l.Value), src.Key, len(src.Value))
		}
	}
	wantGot := map[string]string{}
	for off, reason := range want {
		wantGot[usersTopic+"/"+strconv.FormatInt(off, 10)] = reason
	}
	wantGot[visitsTopic+"/1"] = "row_rejected" // the second insert of the transaction
	if diff := cmp.Diff(got, wantGot); diff != "" {
		t.Errorf("dead letters by source topic/offset (-got +want):\n%s", diff)
	}

	m := scrape(t, c)
	for key, reason := range wantGot {
		topic := key[:strings.LastIndex(key, "/")]
		if v := m.value("strait_consumer_bad_records_total", "topic", topic, "reason", reason, "action", "dead_letter"); v < 1 {
			t.Errorf("strait_consumer_bad_records_total{topic=%s,reason=%s,action=dead_letter} = %v, want at least 1", topic, reason, v)
		}
	}
}

// TestBadRecordStop: with on_bad_record stop, an undecodable record stops
// its table after the records before it, which are committed, and a row
// BigQuery rejects stops its table with nothing of its batch committed;
// another table keeps flowing.
func TestBadRecordStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, dataset = "badstop", "g", "ds_badstop"
	usersTopic, visitsTopic := prefix+".shop.users", prefix+".shop.visits"
	pub := newPublisherPartitions(t, prefix, 1)
	raw := newRawProducer(t)

	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	first := readTopic(t, ctx, usersTopic, 1)[0]
	bad := raw.produce(ctx, usersTopic, first.Key, []byte("not avro"))
	pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))
	pub.publish(ctx, ins(visits, cdc.Int(1), cdc.Int(1)), ins(visits, cdc.Int(2), cdc.Int(farDay)))
	pub.publish(ctx, ins(orders, cdc.Str("t"), cdc.Int(1), cdc.Null))

	c := startConsumer(t, append(consumerArgs(prefix, group, dataset), "-on_bad_record", "stop"))
	waitRows(t, ctx, dataset, "shop_orders", []map[string]any{{"tenant": "t", "id": int64(1), "at": nil}})
	waitLog(t, ctx, c, regexp.MustCompile(`bad record stops its table.*topic=`+regexp.QuoteMeta(usersTopic)+`.*offset=`+strconv.FormatInt(bad, 10)+`.*reason=bad_framing`))
	waitLog(t, ctx, c, regexp.MustCompile(`bad record stops its table.*topic=`+regexp.QuoteMeta(visitsTopic)+`.*offset=1 reason=row_rejected`))
	waitLog(t, ctx, c, regexp.MustCompile(`table stopped; its topic is paused.*topic=`+regexp.QuoteMeta(usersTopic)))
	waitLog(t, ctx, c, regexp.MustCompile(`table stopped; its topic is paused.*topic=`+regexp.QuoteMeta(visitsTopic)))

	// The other table goes on.
	pub.publish(ctx, ins(orders, cdc.Str("t"), cdc.Int(2), cdc.Null))
	waitRows(t, ctx, dataset, "shop_orders", []map[string]any{{"tenant": "t", "id": int64(1), "at": nil}, {"tenant": "t", "id": int64(2), "at": nil}})
	waitCommitted(t, ctx, group, prefix+".shop.orders")

	// users: the record before the bad one is applied and committed,
	// nothing after it; visits: nothing committed.
	waitRows(t, ctx, dataset, "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})
	committed := fetchCommitted(t, ctx, group)
	if o, _ := committed.Lookup(usersTopic, 0); o.At != bad {
		t.Errorf("%s/0 committed at %d, want %d (the bad record's offset)", usersTopic, o.At, bad)
	}
	if o, ok := committed.Lookup(visitsTopic, 0); ok && o.At > 0 {
		t.Errorf("%s/0 committed at %d, want nothing committed", visitsTopic, o.At)
	}
	if letters := readTopic(t, ctx, prefix+"._dead_letter."+group, -1); len(letters) != 0 {
		t.Errorf("%d dead letters with on_bad_record stop, want none", len(letters))
	}
	m := scrape(t, c)
	if v := m.value("strait_consumer_bad_records_total", "topic", usersTopic, "reason", "bad_framing", "action", "stop"); v != 1 {
		t.Errorf("strait_consumer_bad_records_total{topic=%s,reason=bad_framing,action=stop} = %v, want 1", usersTopic, v)
	}
	if v := m.value("strait_consumer_tables_stopped"); v != 2 {
		t.Errorf("strait_consumer_tables_stopped = %v, want 2", v)
	}
}

// newPublisherPartitions is newPublisher with new topics of n partitions.
func newPublisherPartitions(t *testing.T, prefix string, n int) *publisher {
	t.Helper()
	cfg := &kafka.Config{}
	cfg.Defaults()
	cfg.Brokers, cfg.RegistryURL, cfg.TopicPrefix, cfg.Partitions = env.kafka.ListenAddrs(), env.registry.URL(), prefix, n
	w, err := kafka.NewWriter(cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), kafka.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return &publisher{t: t, w: w}
}

// confluent returns the Confluent wire-format header of schema id.
func confluent(id int) []byte {
	b := make([]byte, 5, 64)
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return b
}

// rawProducer writes records as they are, outside the producer's format.
type rawProducer struct {
	t  *testing.T
	cl *kgo.Client
}

func newRawProducer(t *testing.T) *rawProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &rawProducer{t: t, cl: cl}
}

// produce writes one record to partition 0 of topic and returns its offset.
func (p *rawProducer) produce(ctx context.Context, topic string, key, value []byte) int64 {
	p.t.Helper()
	r := &kgo.Record{Topic: topic, Partition: 0, Key: key, Value: value}
	if err := p.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		p.t.Fatal(err)
	}
	return r.Offset
}

// readTopic reads topic from the start (committed records only): n
// records, waiting for them, or with n < 0 every record up to the end (none
// when the topic does not exist).
func readTopic(t *testing.T, ctx context.Context, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := map[int32]int64{}
	if n < 0 {
		listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		listed.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && o.Offset > 0 {
				ends[o.Partition] = o.Offset
			}
		})
	}
	var out []*kgo.Record
	last := map[int32]int64{}
	done := func() bool {
		if n >= 0 {
			return len(out) >= n
		}
		for p, end := range ends {
			// A transaction marker may follow the last record.
			if l, ok := last[p]; !ok || l < end-2 {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d records at the deadline", topic, len(out))
		}
		for _, r := range fs.Records() {
			out = append(out, r)
			last[r.Partition] = r.Offset
		}
	}
	return out
}

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

func fetchCommitted(t *testing.T, ctx context.Context, group string) kadm.OffsetResponses {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	o, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// waitLog waits until the consumer's log has a line matching re.
func waitLog(t *testing.T, ctx context.Context, c *consumerProc, re *regexp.Regexp) {
	t.Helper()
	for !re.MatchString(c.logs.String()) {
		select {
		case <-ctx.Done():
			t.Fatalf("no log line matching %s at the deadline", re)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// countLog counts the consumer's log lines containing s.
func countLog(c *consumerProc, s string) int { return strings.Count(c.logs.String(), s) }

// httpAddr returns the address the consumer serves /metrics on, from its log.
func httpAddr(t *testing.T, c *consumerProc) string {
	t.Helper()
	m := regexp.MustCompile(`serving metrics and health.* addr=(\S+)`).FindStringSubmatch(c.logs.String())
	if m == nil {
		t.Fatal("no log line with the metrics address")
	}
	return m[1]
}

// metricsText is a /metrics answer.
type metricsText []string

// scrape reads the consumer's /metrics.
func scrape(t *testing.T, c *consumerProc) metricsText {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr(t, c) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines metricsText
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// value returns the sum of the series of name having the labels given as
// name, value pairs (0 when there is none).
func (m metricsText) value(name string, labels ...string) float64 {
	sum := 0.0
	for _, l := range m {
		i := strings.LastIndexByte(l, ' ')
		series := l[:i]
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		match := true
		for j := 0; j+1 < len(labels); j += 2 {
			if !strings.Contains(series, labels[j]+`="`+labels[j+1]+`"`) {
				match = false
			}
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); match && err == nil {
			sum += v
		}
	}
	return sum
}

// count returns how many series of name there are.
func (m metricsText) count(name string) int {
	n := 0
	for _, l := range m {
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			n++
		}
	}
	return n
}

func regexpQuote(s string) *regexp.Regexp { return regexp.MustCompile(regexp.QuoteMeta(s)) }

// TestTableProblemsAreNotDeadLettered: with on_bad_record dead_letter, a
// problem of the table rather than of a record — a column type BigQuery
// cannot change, every row of a request refused — stops the table instead of
// dead-lettering its changes; another table keeps flowing.
func TestTableProblemsAreNotDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, dataset = "tblprob", "g", "ds_tblprob"
	usersTopic, visitsTopic := prefix+".shop.users", prefix+".shop.visits"
	pub := newPublisherPartitions(t, prefix, 1)
	retyped := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64}, {Name: "email", Type: cdc.TypeInt64, Nullable: true},
	}}
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	pub.publish(ctx, ins(retyped, cdc.Int(2), cdc.Int(2)))
	pub.publish(ctx, ins(visits, cdc.Int(1), cdc.Int(farDay)), ins(visits, cdc.Int(2), cdc.Int(farDay+1)))
	pub.publish(ctx, ins(orders, cdc.Str("t"), cdc.Int(1), cdc.Null))

	c := startConsumer(t, consumerArgs(prefix, group, dataset))
	waitRows(t, ctx, dataset, "shop_orders", []map[string]any{{"tenant": "t", "id": int64(1), "at": nil}})
	waitLog(t, ctx, c, regexp.MustCompile(`table stopped; its topic is paused.*topic=`+regexp.QuoteMeta(usersTopic)+`.*column email is STRING in BigQuery`))
	waitLog(t, ctx, c, regexp.MustCompile(`table stopped; its topic is paused.*topic=`+regexp.QuoteMeta(visitsTopic)+`.*DATE of 4000000 days`))
	pub.publish(ctx, ins(orders, cdc.Str("t"), cdc.Int(2), cdc.Null))
	waitRows(t, ctx, dataset, "shop_orders", []map[string]any{{"tenant": "t", "id": int64(1), "at": nil}, {"tenant": "t", "id": int64(2), "at": nil}})
	if letters := readTopic(t, ctx, prefix+"._dead_letter."+group, -1); len(letters) != 0 {
		t.Errorf("%d dead letters for table problems, want none", len(letters))
	}
	if v := scrape(t, c).value("strait_consumer_bad_records_total"); v != 0 {
		t.Errorf("strait_consumer_bad_records_total = %v, want 0", v)
	}
}

// TestBadRecordConfig: on_bad_record and kafka.dead_letter_topic are
// checked, naming the key.
func TestBadRecordConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-on_bad_record", "skip"}, `on_bad_record: "skip", want dead_letter or stop`},
		{[]string{"-kafka.dead_letter_topic", "cfg.shop.dead"}, `kafka.dead_letter_topic: "cfg.shop.dead" is one of the table topics`},
		{[]string{"-bigquery.retry_max_backoff", "0s"}, `bigquery.retry_max_backoff: 0s, want more than 0`},
	} {
		err := run(context.Background(), append(consumerArgs("cfg", "g", "ds"), tc.args...), func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// A batch that decompresses far beyond its size (4 MiB of zeros in a few
// hundred bytes of zstd) is not read: it is dead-lettered as
// batch_too_large with the offsets it spans, the changes around it are
// applied, and every offset is committed.
func TestCompressionBombIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, dataset = "bomb", "g", "ds_bomb"
	usersTopic := prefix + ".shop.users"
	pub := newPublisherPartitions(t, prefix, 1)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	zstd, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerBatchMaxBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer zstd.Close()
	bomb := &kgo.Record{Topic: usersTopic, Key: []byte("k"), Value: make([]byte, 4<<20)}
	if err := zstd.ProduceSync(ctx, bomb).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))

	startConsumer(t, consumerArgs(prefix, group, dataset))
	waitRows(t, ctx, dataset, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
	waitCommitted(t, ctx, group, usersTopic)
	letters := readTopic(t, ctx, prefix+"._dead_letter."+group, 1)
	h := headers(letters[0])
	if h["strait.reason"] != "batch_too_large" || h["strait.offset"] != strconv.FormatInt(bomb.Offset, 10) || h["strait.next_offset"] != strconv.FormatInt(bomb.Offset+1, 10) || letters[0].Value != nil {
		t.Errorf("dead letter %v with a value of %d bytes, want batch_too_large from offset %d to %d, without a value", h, len(letters[0].Value), bomb.Offset, bomb.Offset+1)
	}
}
