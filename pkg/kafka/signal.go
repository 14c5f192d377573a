package kafka

// signal.go: requests to a running producer, as JSON records in the topic
// <prefix>._signals (one partition, kept by time). `producer snapshot`
// writes one; the producer reads them from the offset in its checkpoint,
// so each request is taken exactly once, across restarts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SignalTopic returns <prefix>._signals.
func SignalTopic(prefix string) string { return prefix + "._signals" }

// Signal is one request to a running producer.
type Signal struct {
	// Type is what is asked: SignalSnapshot, SignalCancel, SignalRepair
	// or SignalBackfill.
	Type string `json:"type"`
	// Tables are "database.table" names to snapshot; for SignalRepair,
	// the one table to repair or to backfill.
	Tables []string `json:"tables,omitempty"`
	// Filter is an SQL condition limiting the rows snapshotted; empty:
	// every row.
	Filter string `json:"filter,omitempty"`
	// Request is, for SignalCancel, the offset of the snapshot request
	// whose tables' snapshot ends.
	Request int64 `json:"request,omitempty"`
	// Keys are, for SignalRepair, the primary keys to publish again:
	// each the key columns' values in key order, as text (integers in
	// decimal, dates as YYYY-MM-DD, text as it is).
	Keys [][]string `json:"keys,omitempty"`
	// Columns and Rows are, for SignalBackfill, the rows to load: each
	// the text of its value per column (null: NULL).
	Columns []string    `json:"columns,omitempty"`
	Rows    [][]*string `json:"rows,omitempty"`
}

// The types of signal.
const (
	SignalSnapshot = "snapshot" // snapshot Tables
	SignalCancel   = "cancel"   // end the snapshot asked for by Request
	SignalRepair   = "repair"   // publish the rows of Keys of Tables[0] again, a delete for each one gone
	SignalBackfill = "backfill" // publish Rows into Tables[0] with a sequence below every live change
)

// SendSignal appends s to the signal topic of cfg's prefix, creating the
// topic when missing, and returns its offset. It uses a client of its
// own, not the producer's transactional id (which would fence the running
// producer).
func SendSignal(ctx context.Context, cfg *Config, s Signal, opts ...kgo.Opt) (int64, error) {
	value, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	sec, err := cfg.Security.Opts()
	if err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.RequiredAcks(kgo.AllISRAcks())}, sec...), opts...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	topic := SignalTopic(cfg.TopicPrefix)
	adm := kadm.NewClient(cl)
	// kadm returns the topic's error as err too (there was a check of
	// resp.Err alone here, which never saw TOPIC_ALREADY_EXISTS: a second
	// request of a prefix failed).
	_, err = adm.CreateTopic(ctx, 1, int16(cfg.ReplicationFactor), map[string]*string{"cleanup.policy": ptr("delete")}, topic)
	if errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(err, kerr.TopicAuthorizationFailed) && topicExists(ctx, adm, topic) {
		err = nil
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", topic, authorization(err, cfg.Security.Principal(), access{topic: topic, topicOp: "CREATE", clusterOp: "CREATE"}))
	}
	r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(s.Type), Value: value}).First()
	if err != nil {
		return 0, fmt.Errorf("write to %s: %w", topic, authorization(err, cfg.Security.Principal(), access{topic: topic, topicOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"}))
	}
	return r.Offset, nil
}

func ptr(s string) *string { return &s }

// signals reads the requests to a running producer, with a client of its
// own: reading must not wait for, nor take part in, the producer's
// transactions.
type signals struct {
	cfg       *Config
	log       *slog.Logger
	sec       []kgo.Opt // TLS and SASL
	principal string    // User:<name> for authorization errors; "" unknown
}

// Watch calls fn with each signal of the topic from offset from on, and
// the offset after it, until ctx ends. A record that is not a signal is
// passed as a Signal with an empty Type, so that its offset is taken too.
func (s *signals) Watch(ctx context.Context, from int64, fn func(s Signal, next int64) error) error {
	topic := SignalTopic(s.cfg.TopicPrefix)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...), withLog(s.log), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, s.sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var denied error
		fetches.EachError(func(_ string, _ int32, err error) {
			s.log.Debug("signal topic", "topic", topic, "err", err)
			if aerr := authorization(err, s.principal, access{topic: topic, topicOp: "READ"}); aerr != err {
				denied = aerr
			}
		})
		if denied != nil {
			return denied
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			if ferr != nil {
				return
			}
			var sig Signal
			if err := json.Unmarshal(r.Value, &sig); err != nil {
				s.log.Error("not a signal; skipped", "topic", topic, "offset", r.Offset, "err", err)
				sig = Signal{}
			}
			ferr = fn(sig, r.Offset+1)
		})
		if ferr != nil {
			return ferr
		}
	}
}

// peekWriter is a writer of cfg's source that only reads: without the
// transactional id, so the running producer is not fenced.
func peekWriter(cfg *Config, log *slog.Logger) (*Writer, error) {
	peek := *cfg
	peek.Transactions = false
	return NewWriter(&peek, "", log, NewMetrics(prometheus.NewRegistry()))
}

// TooLarge counts, by table, the changes the producer dead-lettered as too
// large for a record (its diverged keys), for producer verify: nil when no
// brokers are configured, and with a warning when the topic cannot be read
// within a minute (verify goes on, without naming them).
func TooLarge(ctx context.Context, cfg *Config, getenv func(string) string, log *slog.Logger) map[string]int {
	if len(cfg.Brokers) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := func() (map[string]int, error) {
		if err := cfg.Security.LoadSecrets(getenv); err != nil {
			return nil, err
		}
		return DeadLettered(ctx, cfg, log, ReasonTooLarge)
	}()
	if err != nil {
		log.Warn("the producer's dead letters are not read: diverged keys are not named", "err", err)
	}
	return n
}

// DeadLettered counts, by table, the committed records of the producer's
// dead-letter topic (<prefix>._dead_letter) sent there for reason: for
// producer verify, which names them next to a table's differences.
func DeadLettered(ctx context.Context, cfg *Config, log *slog.Logger, reason string) (map[string]int, error) {
	w, err := peekWriter(cfg, log)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	out := map[string]int{}
	err = w.state.readCommitted(ctx, w.pub.DeadLetterTopic(), func(r *kgo.Record) {
		var why, table string
		for _, h := range r.Headers {
			switch h.Key {
			case "strait.reason":
				why = string(h.Value)
			case "strait.table":
				table = string(h.Value)
			}
		}
		if why == reason && table != "" {
			out[table]++
		}
	})
	return out, err
}

// SignalRecord is a signal and where it is in the signal topic.
type SignalRecord struct {
	Signal
	Offset int64
	Time   time.Time // when it was written
}

// maxListed bounds the signals ReadRequests returns: the last ones.
const maxListed = 1000

// Requests is what producer snapshot -list reads: the last committed
// checkpoint and snapshot plan records of a source (nil: none) and the
// last signals of its signal topic.
type Requests struct {
	Checkpoint, Plan *StateRecord
	Signals          []SignalRecord
}

// ReadRequests returns the last committed checkpoint record of cfg's
// source, its snapshot plan and the last signals of its signal topic (at
// most maxListed), for people to see where requests stand (producer
// snapshot -list). It does not take over the source's transactional id, so
// the running producer goes on; for the same reason the records are not
// checked to be the producer's own beyond being written in a transaction:
// do not resume from them.
func ReadRequests(ctx context.Context, cfg *Config, log *slog.Logger) (*Requests, error) {
	w, err := peekWriter(cfg, log)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	var out Requests
	for _, r := range []struct {
		topic string
		rec   **StateRecord
	}{{w.state.CheckpointTopic(), &out.Checkpoint}, {w.state.SnapshotPlanTopic(), &out.Plan}} {
		last, err := w.state.readLast(ctx, r.topic, cfg.TopicPrefix)
		if err != nil {
			return nil, err
		}
		if last != nil && last.Attrs.IsTransactional() {
			if *r.rec, err = stateRecord(last); err != nil {
				return nil, err
			}
		}
	}
	err = w.state.readCommitted(ctx, SignalTopic(cfg.TopicPrefix), func(r *kgo.Record) {
		s := SignalRecord{Offset: r.Offset, Time: r.Timestamp}
		if json.Unmarshal(r.Value, &s.Signal) != nil {
			s.Signal = Signal{}
		}
		if len(out.Signals) == maxListed {
			out.Signals = out.Signals[1:]
		}
		out.Signals = append(out.Signals, s)
	})
	return &out, err
}
