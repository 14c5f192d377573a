package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// source is the user's own MariaDB or MySQL server that -services writes
// into producer.yaml. Its password is never written: the binaries read it
// from STRAIT_SOURCE_PASSWORD.
type source struct {
	host    string
	port    int
	user    string
	include string // comma-separated database.table patterns; "" for every table
}

// runServices is `devstack -services`: Kafka, the Schema Registry and the
// local BigQuery endpoint, with a producer.yaml and a consumer.yaml for
// the user's own server, until ctx ends.
//
// State under -dir survives a restart: Kafka's topics (the producer's
// checkpoint with them) and the registered schemas, replayed into the new
// registry in their order so that every schema keeps its id. The local
// BigQuery keeps its tables in memory only, so consumer.yaml names a new
// consumer group on each start: it reads the kept topics from the
// beginning and fills the empty tables again.
func runServices(ctx context.Context, o *options, out io.Writer) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	kafkaDir, regLog := filepath.Join(o.dir, "kafka"), filepath.Join(o.dir, "registry.log")
	_, kerr := os.Stat(kafkaDir)
	_, rerr := os.Stat(regLog)
	switch {
	case kerr == nil && rerr == nil:
		fmt.Fprintf(out, "reusing %s from an earlier run: Kafka topics and registered schemas kept; the local BigQuery starts empty, so the consumer reads the topics again from the beginning\n", o.dir)
	case kerr == nil || rerr == nil:
		fmt.Fprintf(out, "resetting %s: its Kafka topics and registered schemas do not belong together\n", o.dir)
		if err := errors.Join(os.RemoveAll(kafkaDir), os.RemoveAll(regLog)); err != nil {
			return err
		}
	}

	kc, err := testenv.StartKafka(kfake.DataDir(kafkaDir))
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer kc.Close()
	reg, err := startRegistry(regLog)
	if err != nil {
		return err
	}
	defer reg.close()
	bq, err := bqfake.New(bqfake.WithSchemaDelay(localDelay), bqfake.WithRecreateDelay(localDelay))
	if err != nil {
		return fmt.Errorf("local BigQuery: %w", err)
	}
	defer bq.Close()

	brokers := strings.Join(kc.ListenAddrs(), ", ")
	bqCfg := fmt.Sprintf(`bigquery:
  project: local
  dataset: %s
  endpoint: %s
  write_endpoint: %s
  insecure: true
  max_staleness: 10s # reads (producer verify) see changes at most this late
`, o.dataset, bq.RESTURL(), bq.GRPCAddr())
	include := ""
	if o.source.include != "" {
		include = fmt.Sprintf("  include: [%s]\n", quoteList(o.source.include))
	}
	producer := fmt.Sprintf(`# written by go run ./deploy/devstack -services; the password comes from STRAIT_SOURCE_PASSWORD
source:
  host: %s
  port: %d
  user: %s
%skafka:
  brokers: [%s]
  topic_prefix: strait
  schema_registry_url: %s
%shttp_addr: %s
log_format: text
`, o.source.host, o.source.port, o.source.user, include, brokers, reg.url, bqCfg, freeAddr())
	consumer := fmt.Sprintf(`# written by go run ./deploy/devstack -services
kafka:
  brokers: [%s]
  topic_prefix: strait
  schema_registry_url: %s
  group_id: strait-local-%s # new on each start: the local BigQuery starts empty
  topic_refresh: 2s # a new table's topic is found within seconds
%shttp_addr: %s
log_format: text
`, brokers, reg.url, rand.Text()[:8], bqCfg, freeAddr())
	paths := map[string]string{}
	for name, cfg := range map[string]string{"producer": producer, "consumer": consumer} {
		paths[name] = filepath.Join(o.dir, name+".yaml")
		if err := os.WriteFile(paths[name], []byte(cfg), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Kafka            %s\n", brokers)
	fmt.Fprintf(out, "Schema Registry  %s\n", reg.url)
	fmt.Fprintf(out, "BigQuery         %s (Storage Write API %s), project local, dataset %s\n", bq.RESTURL(), bq.GRPCAddr(), o.dataset)
	fmt.Fprintf(out, "source           %s@%s:%d (password from STRAIT_SOURCE_PASSWORD)\n", o.source.user, o.source.host, o.source.port)
	fmt.Fprintf(out, "wrote %s and %s\n", paths["producer"], paths["consumer"])
	fmt.Fprintf(out, "services ready; Ctrl-C stops them (the state stays in %s)\n", o.dir)
	<-ctx.Done()
	return nil
}

// quoteList turns "a.*,b.c" into `"a.*", "b.c"` for a YAML flow list.
func quoteList(s string) string {
	var q []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			q = append(q, fmt.Sprintf("%q", p))
		}
	}
	return strings.Join(q, ", ")
}

// registry is srfake served on a loopback port, every schema registered
// appended to a log from which the next start restores it.
type registry struct {
	url string
	srv *http.Server
	log *os.File
}

// loggedSchema is one line of the registry's log.
type loggedSchema struct {
	Subject string    `json:"subject"`
	Schema  sr.Schema `json:"schema"`
}

// startRegistry replays the log at path into a new registry, in order (so
// each schema gets its earlier id again), and serves it.
func startRegistry(path string) (*registry, error) {
	reg := srfake.NewRegistry()
	if b, err := os.ReadFile(path); err == nil {
		for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); {
			var l loggedSchema
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if _, _, err := reg.RegisterSchema(l.Subject, l.Schema); err != nil {
				return nil, fmt.Errorf("%s: restore %s: %w", path, l.Subject, err)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, err
	}
	r := &registry{url: "http://" + ln.Addr().String(), log: f}
	r.srv = &http.Server{Handler: r.logging(reg.Handler())}
	go r.srv.Serve(ln)
	return r, nil
}

// logging appends each successful registration (POST
// /subjects/<subject>/versions) to the log before answering it.
func (r *registry) logging(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		subject, ok := strings.CutPrefix(req.URL.Path, "/subjects/")
		subject, ok2 := strings.CutSuffix(subject, "/versions")
		if req.Method != http.MethodPost || !ok || !ok2 {
			next.ServeHTTP(w, req)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, header: http.Header{}}
		next.ServeHTTP(rec, req)
		if rec.status == http.StatusOK {
			var l loggedSchema
			l.Subject, _ = url.PathUnescape(subject)
			if json.Unmarshal(body, &l.Schema) == nil {
				line, _ := json.Marshal(l)
				if _, err := r.log.Write(append(line, '\n')); err != nil {
					http.Error(w, "registry log: "+err.Error(), http.StatusInternalServerError)
					return
				}
			}
		}
		rec.flush()
	})
}

// statusRecorder holds a response until the registration is logged, so
// that no client learns an id the next start would not restore.
type statusRecorder struct {
	http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) WriteHeader(code int) { s.status = code }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.body.Write(b)
}

func (s *statusRecorder) flush() {
	for k, v := range s.header {
		s.ResponseWriter.Header()[k] = v
	}
	if s.status == 0 {
		s.status = http.StatusOK
	}
	s.ResponseWriter.WriteHeader(s.status)
	s.ResponseWriter.Write(s.body.Bytes())
}

func (r *registry) close() {
	r.srv.Close()
	r.log.Close()
}
