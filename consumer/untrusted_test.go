package main

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// createTopic creates topic with one partition.
func createTopic(t *testing.T, ctx context.Context, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatal(err)
	}
}

// deadLetters returns the reasons of the group's dead letters by source
// topic and offset ("topic/offset"), waiting for n of them.
func deadLetters(t *testing.T, ctx context.Context, prefix, group string, n int) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, l := range readTopic(t, ctx, prefix+"._dead_letter."+group, n) {
		h := headers(l)
		got[h["strait.topic"]+"/"+h["strait.offset"]] = h["strait.reason"]
	}
	return got
}

// A change of shop.visits copied into the shop.users topic, ahead of the
// topic's own changes, is dead-lettered as wrong_table: the users rows go
// to shop_users (the table the topic names, not the one the first
// record's schema names), shop_visits holds only its own topic's rows,
// and every offset is committed.
func TestMisroutedRecordIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, dataset = "misroute", "g", "ds_misroute"
	usersTopic, visitsTopic := prefix+".shop.users", prefix+".shop.visits"
	pub := newPublisherPartitions(t, prefix, 1)
	raw := newRawProducer(t)

	pub.publish(ctx, ins(visits, cdc.Int(1), cdc.Int(1)))
	visit := readTopic(t, ctx, visitsTopic, 1)[0]
	createTopic(t, ctx, usersTopic)
	at := raw.produce(ctx, usersTopic, visit.Key, visit.Value)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...), ins(users, user(2, "b@x", "2.00")...))

	startConsumer(t, consumerArgs(prefix, group, dataset))
	waitRows(t, ctx, dataset, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
	waitRows(t, ctx, dataset, "shop_visits", []map[string]any{{"id": int64(1), "day": civilEpoch.Date.AddDays(1)}})
	waitCommitted(t, ctx, group, usersTopic, visitsTopic)
	if got, want := deadLetters(t, ctx, prefix, group, 1), map[string]string{usersTopic + "/" + itoa(at): "wrong_table"}; !equalMaps(got, want) {
		t.Errorf("dead letters %v, want %v", got, want)
	}
}

// A record whose value schema id names a schema that is not a change
// envelope (here the producer's checkpoint schema, and a plain "long") is
// dead-lettered as not_envelope; its table keeps going.
func TestNonEnvelopeSchemaIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, dataset = "notenv", "g", "ds_notenv"
	usersTopic := prefix + ".shop.users"
	pub := newPublisherPartitions(t, prefix, 1)
	raw := newRawProducer(t)
	reg, err := sr.NewClient(sr.URLs(env.registry.URL()))
	if err != nil {
		t.Fatal(err)
	}
	long, err := reg.CreateSchema(ctx, prefix+".other-value", sr.Schema{Schema: `"long"`})
	if err != nil {
		t.Fatal(err)
	}

	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	first := readTopic(t, ctx, usersTopic, 1)[0]
	cpID := int(binary.BigEndian.Uint32(readTopic(t, ctx, prefix+"._checkpoint", 1)[0].Value[1:5]))
	want := map[string]string{
		usersTopic + "/" + itoa(raw.produce(ctx, usersTopic, first.Key, append(confluent(long.ID), 2))):    "not_envelope",
		usersTopic + "/" + itoa(raw.produce(ctx, usersTopic, first.Key, append(confluent(cpID), 0, 2, 4))): "not_envelope",
	}
	pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))

	c := startConsumer(t, consumerArgs(prefix, group, dataset))
	waitRows(t, ctx, dataset, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
	pub.publish(ctx, ins(users, user(3, "c@x", "3.00")...))
	waitRows(t, ctx, dataset, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00"), userRow(3, "c@x", "3.00")})
	waitCommitted(t, ctx, group, usersTopic)
	if got := deadLetters(t, ctx, prefix, group, len(want)); !equalMaps(got, want) {
		t.Errorf("dead letters %v, want %v", got, want)
	}
	if v := scrape(t, c).value("strait_consumer_tables_stopped"); v != 0 {
		t.Errorf("strait_consumer_tables_stopped = %v, want 0", v)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func equalMaps(a, b map[string]string) bool { return maps.Equal(a, b) }
