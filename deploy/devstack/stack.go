package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// stack is the running demo: the in-process services and the two binaries.
type stack struct {
	o        *options
	out      io.Writer
	db       *testenv.MariaDB
	kafka    *kfake.Cluster
	registry *srfake.Registry
	bq       *bqfake.Server // nil with a real BigQuery project
	procs    []*process
	metrics  map[string]string // binary → its /metrics URL
}

// startStack starts MariaDB, Kafka, the registry and (unless a real project
// is configured) the local BigQuery endpoint.
func startStack(ctx context.Context, o *options, out io.Writer) (*stack, error) {
	st := &stack{o: o, out: out, metrics: map[string]string{}}
	if _, err := testenv.FindMariaDB(); err != nil {
		return nil, err
	}
	var err error
	fmt.Fprintln(out, "starting MariaDB (binlog on, row format, GTIDs)")
	if st.db, err = testenv.StartMariaDB(ctx, testenv.MariaDBOptions{}); err != nil {
		return nil, err
	}
	if pid, err := os.ReadFile(filepath.Join(st.db.Dir, "mariadbd.pid")); err == nil {
		st.notePid(strings.TrimSpace(string(pid)))
	}
	kopts := []kfake.Opt{kfake.NumBrokers(max(1, o.brokers))}
	if !o.manyTables {
		kopts = append(kopts, kfake.DataDir(filepath.Join(o.dir, "kafka")))
	}
	if st.kafka, err = testenv.StartKafka(kopts...); err != nil {
		st.close()
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if o.manyTables {
		st.registry = testenv.StartBenchRegistry()
	} else {
		st.registry = testenv.StartRegistry()
	}
	target := "project " + o.project + ", dataset " + o.dataset
	if o.project == "" {
		// BigQuery's delays, shortened to a few seconds so that a demo or
		// the chaos test meets them (a new column, a re-created table)
		// without waiting minutes; deletes are remembered for the real
		// two days.
		if st.bq, err = bqfake.New(bqfake.WithSchemaDelay(localDelay), bqfake.WithRecreateDelay(localDelay)); err != nil {
			st.close()
			return nil, fmt.Errorf("local BigQuery: %w", err)
		}
		target = "the local BigQuery endpoint " + st.bq.RESTURL()
	}
	fmt.Fprintf(out, "MariaDB %s, Kafka %s, Schema Registry %s, BigQuery: %s\n",
		st.db.Addr(), strings.Join(st.kafka.ListenAddrs(), ","), st.registry.URL(), target)
	return st, nil
}

// localDelay is how long the local BigQuery takes to show a new column or
// a re-created table to its Write API (minutes in BigQuery).
const localDelay = 3 * time.Second

// process is a started binary; exited is closed once it has ended.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// close stops the binaries (SIGTERM: they drain and commit), then the
// services.
func (st *stack) close() {
	for _, p := range st.procs {
		p.cmd.Process.Signal(syscall.SIGTERM) // an error for one that ended
	}
	for _, p := range st.procs {
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	os.Remove(filepath.Join(st.o.dir, "pids"))
	if st.bq != nil {
		st.bq.Close()
	}
	if st.registry != nil {
		st.registry.Close()
	}
	if st.kafka != nil {
		st.kafka.Close()
	}
	if st.db != nil {
		st.db.Stop()
	}
}

// startBinaries writes the two configuration files and starts bin/producer
// and bin/consumer, waiting until both are ready.
func (st *stack) startBinaries(ctx context.Context) error {
	paddr, caddr := freeAddr(), freeAddr()
	if err := st.writeConfigs(); err != nil {
		return err
	}
	addrs := map[string]string{"producer": paddr, "consumer": caddr}
	procs := map[string]*process{}
	for name, addr := range addrs {
		p, err := st.spawn(name, "-http_addr", addr)
		if err != nil {
			return err
		}
		procs[name] = p
	}
	st.metrics["producer"], st.metrics["consumer"] = "http://"+paddr+"/metrics", "http://"+caddr+"/metrics"
	for name, addr := range addrs {
		if err := waitReady(ctx, addr, filepath.Join(st.o.dir, name+".log"), procs[name].exited); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// writeConfigs writes <dir>/producer.yaml and <dir>/consumer.yaml.
func (st *stack) writeConfigs() error {
	brokers := strings.Join(st.kafka.ListenAddrs(), ", ")
	producer := fmt.Sprintf(`# written by make demo
source:
  host: %s
  port: %d
  user: %s
  include: ["shop.*"]
  heartbeat_period: 1s
kafka:
  brokers: [%s]
  topic_prefix: demo
  schema_registry_url: %s
  partitions: 3
log_format: text
`, st.db.Host, st.db.Port, st.db.User, brokers, st.registry.URL())
	bq := fmt.Sprintf(`bigquery:
  project: %s
  dataset: %s
  max_staleness: 1m # reads (producer verify) see changes at most this late; 0 would leave them unreadable
`, st.o.project, st.o.dataset)
	if st.bq != nil {
		bq = fmt.Sprintf(`bigquery:
  project: demo
  dataset: %s
  endpoint: %s
  write_endpoint: %s
  insecure: true
  max_staleness: 10s # as in BigQuery, reads see changes at most this late
  retry_max_backoff: 2s
`, st.o.dataset, st.bq.RESTURL(), st.bq.GRPCAddr())
	}
	consumer := fmt.Sprintf(`# written by make demo
kafka:
  brokers: [%s]
  group_id: strait-demo
  topic_prefix: demo
  schema_registry_url: %s
  topic_refresh: 2s
  session_timeout: 6s
  rebalance_timeout: 15s
%slog_format: text
`, brokers, st.registry.URL(), bq)
	if st.o.manyTables {
		// README, "Many tables": one partition a table, batches that wait
		// for the transaction's commit.
		producer = strings.Replace(producer, "  partitions: 3\n", "  partitions: 1\n  producer_linger: 100ms\n", 1)
	}
	producer += bq // for producer verify
	for name, cfg := range map[string]string{"producer": producer, "consumer": consumer} {
		if err := os.WriteFile(filepath.Join(st.o.dir, name+".yaml"), []byte(cfg), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// spawn starts `bin/<binary> run` with <dir>/<binary>.yaml and extra
// flags, its log appended to <dir>/<binary>.log, and notes its pid for make
// demo-down.
func (st *stack) spawn(binary string, flags ...string) (*process, error) {
	log, err := os.OpenFile(filepath.Join(st.o.dir, binary+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	args := append([]string{"run", "-config", filepath.Join(st.o.dir, binary+".yaml")}, flags...)
	cmd := exec.Command(filepath.Join(st.o.bin, binary), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "STRAIT_SOURCE_PASSWORD="+st.db.Password)
	// Benchmarks: STRAIT_BENCH_PRODUCER_GOMEMLIMIT (or _CONSUMER_) is the
	// binary's GOMEMLIMIT, as deploy/ sets it; the benchmark's own process
	// keeps none.
	if limit := os.Getenv("STRAIT_BENCH_" + strings.ToUpper(binary) + "_GOMEMLIMIT"); limit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+limit)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	st.procs = append(st.procs, p)
	st.notePid(strconv.Itoa(cmd.Process.Pid))
	return p, nil
}

// notePid adds a process to <dir>/pids, which make demo-down stops if the
// demo itself could not (killed, or the machine went down).
func (st *stack) notePid(pid string) {
	f, err := os.OpenFile(filepath.Join(st.o.dir, "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, pid)
}

// waitReady waits for GET /readyz to answer 200; the log's tail explains a
// binary that stopped instead. exited, when not nil, is closed when the
// binary ends: a binary that stopped is reported at once, not after the
// minute.
func waitReady(ctx context.Context, addr, logPath string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		return strings.Join(lines[max(0, len(lines)-10):], "\n")
	}
	for {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within a minute; last log lines:\n%s", tail())
		case <-exited:
			return fmt.Errorf("stopped while starting; last log lines:\n%s", tail())
		case <-tick.C:
		}
	}
}

// sum adds up the samples of a metric on a /metrics page.
func sum(url, metric string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var n float64
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		line := sc.Text()
		if strings.HasPrefix(line, metric+"{") || strings.HasPrefix(line, metric+" ") {
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				n += v
			}
		}
	}
	return n
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}
