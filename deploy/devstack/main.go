// Command devstack runs the whole pipeline on one machine, without Docker:
// `make demo`. It hosts the parts that are not strait in its own process — a
// real MariaDB with the binlog on (started like the tests start it), a
// Kafka broker (kfake, kept on disk under -dir), a Schema Registry (srfake)
// and the local BigQuery endpoint (bqfake) — loads a sample schema, starts
// bin/producer and bin/consumer as separate processes, runs a write
// workload with a progress line every second, and ends with `bin/producer
// verify`: every table in MariaDB compared with its table in BigQuery, row
// counts and checksums over all columns by key range. It exits 1 when a
// table differs.
//
// With STRAIT_BIGQUERY_PROJECT set, the consumer writes to that real
// project instead (dataset STRAIT_BIGQUERY_DATASET, default strait_demo,
// credentials from Application Default Credentials), and verify reads the
// tables back from it through the Storage Read API.
//
// With -services it starts only Kafka, the registry and the local BigQuery
// endpoint, and writes producer.yaml and consumer.yaml for the user's own
// MariaDB or MySQL server (README, "Getting started on your own
// database"); it runs until interrupted, keeping its state under -dir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// options are the demo's flags.
type options struct {
	dir      string
	bin      string
	duration time.Duration
	rate     int
	brokers  int
	project  string // real BigQuery project; "" for the local endpoint
	dataset  string
	services bool   // -services: only Kafka, the registry and BigQuery
	source   source // the user's server, for -services
	// manyTables: for benchmarks of many tables, a registry without
	// compatibility checks (testenv.StartBenchRegistry) and Kafka in
	// memory (a data dir holds files per partition: 60,000 of them with
	// 20,000 tables, beyond the open-file limit).
	manyTables bool
}

func parse(args []string, getenv func(string) string) (*options, error) {
	o := &options{project: getenv("STRAIT_BIGQUERY_PROJECT"), dataset: getenv("STRAIT_BIGQUERY_DATASET")}
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".demo", "directory for the stack's state, configuration and logs (make demo-down removes it)")
	fs.StringVar(&o.bin, "bin", "bin", "directory holding the producer and consumer binaries (make build)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long the write workload runs")
	fs.IntVar(&o.rate, "rate", 200, "source transactions per second of the workload")
	fs.IntVar(&o.brokers, "brokers", 1, "Kafka brokers")
	fs.BoolVar(&o.services, "services", false, "start only Kafka, the Schema Registry and the local BigQuery endpoint, write producer.yaml and consumer.yaml for your own server (-source-*) into -dir (default .strait), and run until interrupted")
	fs.StringVar(&o.source.host, "source-host", envOr(getenv, "STRAIT_SOURCE_HOST", "127.0.0.1"), "with -services: your MariaDB/MySQL server's host (default $STRAIT_SOURCE_HOST)")
	port, err := strconv.Atoi(envOr(getenv, "STRAIT_SOURCE_PORT", "3306"))
	if err != nil {
		return nil, fmt.Errorf("STRAIT_SOURCE_PORT: %w", err)
	}
	fs.IntVar(&o.source.port, "source-port", port, "with -services: its port (default $STRAIT_SOURCE_PORT)")
	fs.StringVar(&o.source.user, "source-user", envOr(getenv, "STRAIT_SOURCE_USER", "strait"), "with -services: the producer's user (default $STRAIT_SOURCE_USER); the binaries read its password from STRAIT_SOURCE_PASSWORD")
	fs.StringVar(&o.source.include, "include", "", "with -services: comma-separated database.table patterns to capture, e.g. shop.* (default every table outside the system schemas)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	dirSet := false
	fs.Visit(func(f *flag.Flag) { dirSet = dirSet || f.Name == "dir" })
	if o.services && !dirSet {
		o.dir = ".strait"
	}
	if o.dataset == "" {
		o.dataset = "strait_demo"
	}
	if o.rate < 1 || o.duration < 0 {
		return nil, errors.New("-rate must be at least 1 and -duration not negative")
	}
	return o, nil
}

// envOr is getenv(key), or def when it is empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	o, err := parse(args, getenv)
	if err != nil {
		return err
	}
	if o.services {
		return runServices(ctx, o, out)
	}
	for _, b := range []string{"producer", "consumer"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("%s/%s missing: run make build first", o.bin, b)
		}
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if err := resetDemo(o.dir, out); err != nil {
		return err
	}
	st, err := startStack(ctx, o, out)
	if err != nil {
		return err
	}
	defer st.close()

	fmt.Fprintf(out, "loading the sample schema (database shop: %s)\n", tableList())
	if err := loadSchema(ctx, st.db); err != nil {
		return err
	}
	if err := st.startBinaries(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "producer and consumer running (logs in %s); writing for %s at %d transactions/s\n", o.dir, o.duration, o.rate)
	if err := st.workload(ctx, o.duration, o.rate); err != nil {
		return err
	}
	fmt.Fprintln(out, "workload done; waiting for BigQuery to hold every change")
	ok, err := st.verify(ctx, 2*time.Minute)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("BigQuery differs from the source (see above)")
	}
	fmt.Fprintln(out, "every table matches: row counts and checksums equal")
	return nil
}
