package bigquery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/option"
	"google.golang.org/api/option/internaloption"
	htransport "google.golang.org/api/transport/http"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Whether BigQuery answers. Google's clients retry an endpoint that
// refuses connections or answers 5xx on their own, silently and for as
// long as the call's context lasts, which for the writer is forever. So
// the writer watches every attempt instead, below the retries: its REST
// client's transport and interceptors on its Storage Write API
// connections report each attempt's outcome. An endpoint that does not
// answer (a refused or broken connection, a timeout, a 5xx, gRPC
// UNAVAILABLE) is warned about at its first failed attempt, again at
// most every outageLogEvery while it lasts, and once when it answers
// again; Unavailable lists the endpoints down now (readiness, status).

// outageLogEvery bounds how often one outage is warned about.
const outageLogEvery = 30 * time.Second

// Outage is a BigQuery endpoint that does not answer.
type Outage struct {
	Endpoint string    `json:"endpoint"` // the REST API's scheme://host, or the Storage Write API's host:port
	Err      string    `json:"error"`    // the last failed attempt's
	Since    time.Time `json:"since"`    // the first failed attempt of this outage
}

// Error says which endpoint is down, since when and why.
func (o Outage) Error() string {
	return fmt.Sprintf("bigquery %s unavailable since %s: %s", o.Endpoint, o.Since.UTC().Format(time.RFC3339), o.Err)
}

// health is what the writer knows of its endpoints. Safe for concurrent
// use: Google's clients report from their own goroutines.
type health struct {
	log *slog.Logger

	mu   sync.Mutex
	down map[string]*outage // by endpoint
}

type outage struct {
	err    error
	since  time.Time
	warned time.Time
}

func newHealth(log *slog.Logger) *health {
	return &health{log: log, down: map[string]*outage{}}
}

// observe notes an attempt at endpoint: err nil when the endpoint
// answered, else why it did not.
func (h *health) observe(endpoint string, err error) { h.observeAt(endpoint, err, time.Now()) }

// observeAt is observe of an attempt that ended at now.
func (h *health) observeAt(endpoint string, err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.down[endpoint]
	switch {
	case err == nil && o != nil:
		delete(h.down, endpoint)
		h.log.Info("bigquery answers again", "endpoint", endpoint, "after", now.Sub(o.since).Round(time.Millisecond).String())
	case err == nil:
	case o == nil:
		h.down[endpoint] = &outage{err: err, since: now, warned: now}
		h.log.Warn("bigquery unavailable: trying again with backoff; the changes wait in Kafka", "endpoint", endpoint, "err", err)
	default:
		o.err = err
		if now.Sub(o.warned) >= outageLogEvery {
			o.warned = now
			h.log.Warn("bigquery unavailable: trying again with backoff; the changes wait in Kafka", "endpoint", endpoint, "err", err,
				"for", now.Sub(o.since).Round(time.Second).String())
		}
	}
}

// outages returns the endpoints down now, the longest down first.
func (h *health) outages() []Outage {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Outage, 0, len(h.down))
	for ep, o := range h.down {
		out = append(out, Outage{Endpoint: ep, Err: o.err.Error(), Since: o.since})
	}
	slices.SortFunc(out, func(a, b Outage) int { return a.Since.Compare(b.Since) })
	return out
}

// Unavailable returns the BigQuery endpoints that did not answer their
// last attempt, the longest down first; none while BigQuery answers.
func (w *Writer) Unavailable() []Outage { return w.health.outages() }

// Ready returns why the writer cannot work now: the BigQuery endpoints
// that do not answer, joined (readiness); nil while BigQuery answers.
func (w *Writer) Ready() error {
	outages := w.Unavailable()
	errs := make([]error, len(outages))
	for i, o := range outages {
		errs[i] = o
	}
	return errors.Join(errs...)
}

// PrepareDataset is EnsureDataset tried again with backoff, from a second
// up to bigquery.retry_max_backoff, while BigQuery does not answer (the
// writer warns about that); any other failure (credentials, a
// permission) is returned at once.
func (w *Writer) PrepareDataset(ctx context.Context) error {
	wait := min(time.Second, w.cfg.RetryMaxBackoff)
	for {
		err := w.EnsureDataset(ctx)
		if err == nil || ctx.Err() != nil || len(w.Unavailable()) == 0 {
			return err
		}
		w.log.Debug("bigquery dataset not ready: trying again", "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, w.cfg.RetryMaxBackoff)
	}
}

// watchedTransport reports each REST attempt's outcome to h.
type watchedTransport struct {
	base http.RoundTripper
	h    *health
}

// RoundTrip sends r and reports whether the endpoint answered: a 5xx
// is no answer (BigQuery's backend errors, a proxy's 502/503), any other
// status is.
func (t *watchedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	endpoint := r.URL.Scheme + "://" + r.URL.Host
	switch {
	case err != nil && r.Context().Err() != nil: // the caller gave up: no news of the endpoint
	case err != nil:
		t.h.observe(endpoint, err)
	case resp.StatusCode >= 500:
		t.h.observe(endpoint, fmt.Errorf("%s %s: HTTP %s", r.Method, r.URL.Path, resp.Status))
	default:
		t.h.observe(endpoint, nil)
	}
	return resp, err
}

// watchedRPC reports a Storage Write API call's outcome (for a stream,
// its opening) to h: UNAVAILABLE or a deadline is no answer.
func (h *health) watchedRPC(ctx context.Context, endpoint string, err error) {
	switch status.Code(err) {
	case codes.Canceled:
	case codes.Unavailable, codes.DeadlineExceeded:
		if !errors.Is(ctx.Err(), context.Canceled) {
			h.observe(endpoint, err)
		}
	default:
		h.observe(endpoint, nil)
	}
}

// watchedOptions are the writer's client options: those of
// clientOptions, with the REST API's attempts and the Storage Write API's
// calls reported to h, and both bounded by bigquery.request_timeout
// where an endpoint could hang (connecting, awaiting an answer's
// headers, the gRPC handshake). ctx outlives the clients.
func (c *Config) watchedOptions(ctx context.Context, h *health) (rest, grpcOpts []option.ClientOption, err error) {
	_, grpcOpts = c.clientOptions()
	// A Config not through Defaults still gets bounded waits.
	timeout, maxDelay := cmp.Or(c.RequestTimeout, 30*time.Second), cmp.Or(c.RetryMaxBackoff, time.Minute)
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext, base.ResponseHeaderTimeout = dialer.DialContext, timeout
	// The client is ours, so the credentials go on its transport, by the
	// auth library bigquery.NewClient uses for its own.
	auth := []option.ClientOption{option.WithScopes(bigquery.Scope), internaloption.EnableNewAuthLibrary()}
	if c.CredentialsFile != "" {
		auth = append(auth, option.WithAuthCredentialsFile(option.ServiceAccount, c.CredentialsFile))
	}
	if c.Insecure {
		auth = append(auth, option.WithoutAuthentication())
	}
	rt, err := htransport.NewTransport(ctx, &watchedTransport{base: base, h: h}, auth...)
	if err != nil {
		return nil, nil, fmt.Errorf("bigquery transport: %w", err)
	}
	rest = []option.ClientOption{option.WithHTTPClient(&http.Client{Transport: rt})}
	if c.Endpoint != "" {
		rest = append(rest, option.WithEndpoint(c.Endpoint))
	}

	endpoint := c.WriteEndpoint
	if endpoint == "" {
		endpoint = "bigquerystorage.googleapis.com:443"
	}
	grpcOpts = append(grpcOpts,
		option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			h.watchedRPC(ctx, endpoint, err)
			return err
		})),
		option.WithGRPCDialOption(grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			h.watchedRPC(ctx, endpoint, err)
			return s, err
		})),
		// A connection that broke is dialled again within
		// retry_max_backoff (gRPC's own backoff grows to 2 minutes), and
		// a handshake that hangs fails after request_timeout.
		option.WithGRPCDialOption(grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxDelay},
			MinConnectTimeout: timeout,
		})))
	return rest, grpcOpts, nil
}
