// Package service is what the producer and the consumer binaries share
// around their loops: subcommand dispatch, logging, the /metrics /healthz
// /readyz endpoint, and exit codes.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strait-cdc/strait/pkg/config"
)

// ErrUsage reports a command line that names no known command.
var ErrUsage = errors.New("usage")

// ExitCode is the process status for err: 2 for a usage error, else 1.
func ExitCode(err error) int {
	if errors.Is(err, ErrUsage) {
		return 2
	}
	return 1
}

// Process is what a running command has around its loop: a logger, a
// metrics registry and a readiness flag, served on /metrics, /healthz and
// /readyz until Close.
type Process struct {
	Log     *slog.Logger
	Metrics *prometheus.Registry
	Ready   atomic.Bool // set while the loop runs: /readyz answers 200
	status  atomic.Pointer[func() any]
	check   atomic.Pointer[func() error]
	srv     *http.Server
	term    *statusLine // stderr is a terminal: its progress line (terminal.go); nil otherwise
}

// SetCheck makes /readyz answer 503 with f's error, whatever Ready says,
// while f returns one: a dependency the loop waits for, named with its
// error.
func (p *Process) SetCheck(f func() error) { p.check.Store(&f) }

// SetStatus makes GET /status answer with f's result as JSON: what the
// loop has done so far, for people and scripts.
func (p *Process) SetStatus(f func() any) { p.status.Store(&f) }

// Start builds the logger (level, format: see newLogger) writing to w and
// serves the HTTP endpoint on addr, with Go's profiles under /debug/pprof/
// when profiles is set. Unless GOMEMLIMIT is set, it sets Go's
// soft memory limit to 90% of the container's (memlimit.go). When w is a terminal, the log keeps a
// progress line under it (Progress).
func Start(addr, level, format string, profiles bool, w io.Writer) (*Process, error) {
	p := &Process{Metrics: newRegistry(), term: terminalOf(w)}
	if p.term != nil {
		w = p.term
	}
	p.Log = newLogger(level, format, w)
	self, _ := os.ReadFile("/proc/self/cgroup")
	if limit, container, ok := memoryLimitFromContainer(os.Getenv("GOMEMLIMIT"), "/sys/fs/cgroup", string(self)); ok {
		debug.SetMemoryLimit(limit)
		p.Log.Info("Go's memory limit set from the container's (GOMEMLIMIT overrides it)",
			"container_bytes", container, "limit_bytes", limit)
	}
	srv, err := serveHTTP(addr, p.Metrics, p.ready, &p.status, profiles, p.Log)
	if err != nil {
		return nil, err
	}
	p.srv = srv
	return p, nil
}

// ready is nil when /readyz answers 200, else why not.
func (p *Process) ready() error {
	if f := p.check.Load(); f != nil {
		if err := (*f)(); err != nil {
			return err
		}
	}
	if !p.Ready.Load() {
		return errors.New("not ready")
	}
	return nil
}

// Close stops the HTTP endpoint and removes the progress line.
func (p *Process) Close() {
	p.srv.Close()
	p.Progress("")
}

// newLogger returns the binary's logger: level debug, info, warn or error;
// format json (default) or text.
func newLogger(level, format string, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serveHTTP serves /metrics from reg, /healthz (the process is alive),
// /readyz (200 when ready returns nil, else 503 with its error) and
// /status (status's answer, as JSON), and with profiles Go's runtime
// profiles (/debug/pprof/: CPU, heap, goroutines) on addr until the
// returned server is closed.
func serveHTTP(addr string, reg *prometheus.Registry, ready func() error, status *atomic.Pointer[func() any], profiles bool, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		f := status.Load()
		if f == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode((*f)())
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http_addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving metrics and health", "addr", l.Addr().String())
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	return srv, nil
}

// Command is one subcommand of a binary; args follow the command's name.
type Command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Dispatch runs the command named by args[0]; "version" and "help" are
// built in. Asking for help, or for -print-config, is not an error.
func Dispatch(ctx context.Context, program, version, usage string, commands map[string]Command,
	args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ErrUsage
	}
	var err error
	switch cmd, ok := commands[args[0]]; {
	case ok:
		err = cmd(ctx, args[1:], getenv, stdout, stderr)
	case args[0] == "version":
		fmt.Fprintln(stdout, "strait", program, version)
	case args[0] == "-h", args[0] == "-help", args[0] == "--help", args[0] == "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", program, args[0], usage)
		return ErrUsage
	}
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, config.ErrPrinted) {
		return nil
	}
	return err
}

// ValidateLogging reports a log_level or log_format the binaries do not know.
func ValidateLogging(level, format string) []error {
	var errs []error
	switch level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q, want debug, info, warn or error", level))
	}
	if format != "json" && format != "text" {
		errs = append(errs, fmt.Errorf("log_format: %q, want json or text", format))
	}
	return errs
}

// newRegistry returns a metrics registry holding the Go runtime and process
// metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
