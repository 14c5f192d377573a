package bigquery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Write connections. BigQuery limits the AppendRows connections of a
// project (5,000 in a region, 20,000 in the US and EU multi-regions:
// "Quotas and limits", Storage Write API), and "BigQuery Storage Write API
// best practices", "Connection pool management", advises multiplexing the
// default streams of many tables over few connections, with CDC and plain
// appends on different connections. So the tables' streams share
// bigquery.write_connections fixed connections per kind: each table's
// stream goes to the one with the fewest streams, and a connection closes
// once its last stream does (streams idle for bigquery.stream_idle_timeout
// are closed). Each connection is a managedwriter client with multiplexing
// and a pool of one: measured before, the library's own multiplexing pool
// kept 8 busy tables on one connection and ran 17% slower than spreading
// them.

// conn is one shared connection: a multiplexing client and the streams on
// it.
type conn struct {
	mw      *managedwriter.Client
	streams int
}

// pool is the connections of one kind of table (CDC or plain).
type pool struct {
	mu    sync.Mutex
	conns []*conn
}

// pools are the writer's connection pools; nil when every table has its
// own connection (bigquery.write_connections 0).
type pools struct {
	cdc, plain pool
	metrics    *Metrics
}

func newPools(ctx context.Context, project string, n int, opts []option.ClientOption, m *Metrics) (*pools, error) {
	p := &pools{metrics: m}
	shared := append(append([]option.ClientOption{}, opts...), managedwriter.WithMultiplexing(), managedwriter.WithMultiplexPoolLimit(1))
	for _, pl := range []*pool{&p.cdc, &p.plain} {
		for range n {
			mw, err := managedwriter.NewClient(ctx, project, shared...)
			if err != nil {
				p.close()
				return nil, err
			}
			pl.conns = append(pl.conns, &conn{mw: mw})
		}
	}
	return p, nil
}

// take returns the connection of kind with the fewest streams and counts
// one more on it.
func (p *pools) take(cdc bool) *conn {
	pl := &p.plain
	if cdc {
		pl = &p.cdc
	}
	pl.mu.Lock()
	best := pl.conns[0]
	for _, c := range pl.conns[1:] {
		if c.streams < best.streams {
			best = c
		}
	}
	best.streams++
	pl.mu.Unlock()
	p.count()
	return best
}

// give counts one stream less on c, of kind cdc.
func (p *pools) give(c *conn, cdc bool) {
	pl := &p.plain
	if cdc {
		pl = &p.cdc
	}
	pl.mu.Lock()
	c.streams--
	pl.mu.Unlock()
	p.count()
}

// count sets the connections gauge: connections with a stream are open.
func (p *pools) count() {
	n := 0
	for _, pl := range []*pool{&p.cdc, &p.plain} {
		pl.mu.Lock()
		for _, c := range pl.conns {
			if c.streams > 0 {
				n++
			}
		}
		pl.mu.Unlock()
	}
	p.metrics.connections.Set(float64(n))
}

func (p *pools) close() error {
	var errs []error
	for _, pl := range []*pool{&p.cdc, &p.plain} {
		for _, c := range pl.conns {
			errs = append(errs, c.mw.Close())
		}
	}
	return errors.Join(errs...)
}

// streams opens and closes the tables' default streams: on a shared
// connection of the table's kind, or on the writer's own client when
// there are no pools. What a stream holds is kept in its table, under
// the table's lock.
type streams struct {
	cfg     *Config
	metrics *Metrics
	mw      *managedwriter.Client // the connections of tables' own streams
	pools   *pools                // shared write connections; nil: one per table
	closing sync.WaitGroup        // streams closing on goroutines of their own (close)
}

// open (re)opens the table's default stream with a writer schema of
// the table's current columns. t.mu is held.
func (s *streams) open(ctx context.Context, t *table) error {
	desc, err := writerSchema(t.state.schema, !t.state.appendMode)
	if err != nil {
		return permanent(fmt.Errorf("table %s: %w", t.state.id, err))
	}
	s.close(t)
	t.stream, err = s.newStream(ctx, t, desc)
	if err != nil {
		return fmt.Errorf("open the default stream of %s: %w", t.state.id, err)
	}
	t.streamColumns = len(t.state.schema)
	return nil
}

// newStream opens t's default stream on a shared connection of its kind
// (CDC or plain), or on its own when there are no pools. t.mu is held.
func (s *streams) newStream(ctx context.Context, t *table, desc *descriptorpb.DescriptorProto) (*managedwriter.ManagedStream, error) {
	mw := s.mw
	if s.pools != nil {
		t.connCDC = !t.state.appendMode
		t.conn = s.pools.take(t.connCDC)
		mw = t.conn.mw
	}
	// The stream lives until close, not until this call's ctx ends:
	// managedwriter keeps the context it is opened with. But the opening
	// (GetWriteStream, retried while BigQuery is unavailable) ends with
	// ctx: a consumer stopping during an outage waited for BigQuery to
	// come back (TestStopDuringBigQueryOutage, seen in CI).
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	detach := context.AfterFunc(ctx, endLife)
	ms, err := mw.NewManagedStream(life,
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(s.cfg.Project, s.cfg.Dataset, t.state.id)),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(desc))
	if !detach() && err == nil { // ctx ended as the stream opened: its context is over
		ms.Close()
		ms, err = nil, ctx.Err()
	}
	if err != nil {
		endLife()
	} else {
		t.endLife = endLife
	}
	switch {
	case err != nil && t.conn != nil:
		s.pools.give(t.conn, t.connCDC)
		t.conn = nil
	case err == nil && t.conn == nil:
		s.metrics.connections.Inc()
	}
	return ms, err
}

// close closes t's stream and gives back its share of a connection.
// t.mu is held.
//
// The stream ends on a goroutine of its own (closeClients waits for it):
// managedwriter closes it under its connection's lock, which a reconnect
// holds for as long as the Write API is unreachable, retrying until the
// clients close. An append whose context ended leaves such a reconnect
// behind, and a caller that then closed the stream (an idle table, the
// watermark's error path during a stop) waited for BigQuery to come back
// (TestStreamClosesDuringOutage; seen in CI).
func (s *streams) close(t *table) {
	if t.stream == nil {
		return
	}
	ms := t.stream
	s.closing.Go(func() { ms.Close() })
	t.endLife()
	t.stream, t.endLife = nil, nil
	switch {
	case t.conn != nil:
		s.pools.give(t.conn, t.connCDC)
		t.conn = nil
	default:
		s.metrics.connections.Dec()
	}
}

// closeClients closes the pools' connections and the writer's own client,
// once every stream is closed (the clients' context ended first: Close).
func (s *streams) closeClients() error {
	s.closing.Wait()
	var perr error
	if s.pools != nil {
		perr = s.pools.close()
	}
	return errors.Join(s.mw.Close(), perr)
}

// CloseIdle closes the streams of tables that wrote nothing for
// bigquery.stream_idle_timeout; a table being written is left alone.
func (w *Writer) CloseIdle() {
	w.mu.Lock()
	tables := make([]*table, 0, len(w.tables))
	for _, t := range w.tables {
		tables = append(tables, t)
	}
	w.mu.Unlock()
	for _, t := range tables {
		if !t.mu.TryLock() {
			continue
		}
		if t.stream != nil && time.Since(t.used) >= w.cfg.StreamIdleTimeout {
			w.streams.close(t)
		}
		t.mu.Unlock()
	}
}

// CloseIdleEvery calls CloseIdle every interval until ctx ends.
func (w *Writer) CloseIdleEvery(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.CloseIdle()
		}
	}
}
