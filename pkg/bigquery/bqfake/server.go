package bqfake

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// grpcMaxRecv is the gRPC server's receive limit. It is well above
// BigQuery's 10 MiB AppendRows limit so that an oversized request reaches
// the rule in write.go and fails the way BigQuery fails it, instead of being
// cut off by the transport.
const grpcMaxRecv = 64 << 20

// Server is a local BigQuery endpoint: the REST API subset on an HTTP
// listener and the Storage Write and Read APIs on a gRPC listener, both on
// loopback. It is the face tests see; each API is served by its own type
// (restService, writeService, readService) over the tables they share
// (catalog). All methods are safe for concurrent use.
type Server struct {
	httpLn  net.Listener
	httpSrv *http.Server
	grpcLn  net.Listener
	grpcSrv *grpc.Server

	cat   *catalog
	write *writeService // for its counters and injected faults
}

type config struct {
	location string

	clock           *Clock // nil: the wall clock
	schemaDelay     time.Duration
	recreateDelay   time.Duration
	deleteRetention time.Duration
	maxConns        int // 0: by location
	backgroundApply bool
}

// Opt configures a Server.
type Opt func(*config)

// WithLocation sets the location reported for datasets created without
// one and for write streams. Default "US".
func WithLocation(loc string) Opt {
	return func(c *config) { c.location = loc }
}

// New starts a Server on two free loopback ports. Close stops it.
func New(opts ...Opt) (*Server, error) {
	cfg := config{location: "US", schemaDelay: DefaultSchemaDelay, recreateDelay: DefaultRecreateDelay, deleteRetention: DefaultDeleteRetention, backgroundApply: true}
	for _, o := range opts {
		o(&cfg)
	}
	cat := &catalog{cfg: cfg, datasets: make(map[datasetKey]*dataset)}
	s := &Server{cat: cat, write: &writeService{cat: cat}}

	var err error
	if s.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("bqfake: listen rest: %w", err)
	}
	if s.grpcLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		s.httpLn.Close()
		return nil, fmt.Errorf("bqfake: listen grpc: %w", err)
	}

	s.httpSrv = &http.Server{Handler: (&restService{cat: cat}).handler()}
	s.grpcSrv = grpc.NewServer(grpc.MaxRecvMsgSize(grpcMaxRecv))
	storagepb.RegisterBigQueryWriteServer(s.grpcSrv, s.write)
	storagepb.RegisterBigQueryReadServer(s.grpcSrv, &readService{cat: cat})

	go s.httpSrv.Serve(s.httpLn)
	go s.grpcSrv.Serve(s.grpcLn)
	return s, nil
}

// Close stops both listeners and ends open connections and streams.
func (s *Server) Close() error {
	s.grpcSrv.Stop()
	err := s.httpSrv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// RESTURL is the REST endpoint, "http://127.0.0.1:<port>/bigquery/v2/",
// for option.WithEndpoint of the bigquery client.
func (s *Server) RESTURL() string {
	return "http://" + s.httpLn.Addr().String() + "/bigquery/v2/"
}

// GRPCAddr is the Storage Write API endpoint, "127.0.0.1:<port>", for
// option.WithEndpoint of the managedwriter client.
func (s *Server) GRPCAddr() string {
	return s.grpcLn.Addr().String()
}

// ClientOptions are the options for bigquery.NewClient to talk to s:
// the REST endpoint and no authentication.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.RESTURL()),
		option.WithoutAuthentication(),
	}
}

// GRPCClientOptions are the options for managedwriter.NewClient to talk to
// s: the gRPC endpoint, no authentication, a plaintext connection, and a
// pool of one connection (managedwriter asks for up to four by default,
// which a local server does not need).
func (s *Server) GRPCClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.GRPCAddr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithGRPCConnectionPool(1),
	}
}

// Appends is the number of AppendRows requests the server has received,
// accepted or not.
func (s *Server) Appends() int64 {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	return s.write.appends
}

// SchemaRefusals is the number of appends refused because their writer
// schema named columns the Write API did not see yet (WithSchemaDelay).
func (s *Server) SchemaRefusals() int64 {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	return s.write.unseen
}

// AppendBytes is the total serialized size of the AppendRows requests the
// server has received.
func (s *Server) AppendBytes() int64 {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	return s.write.bytes
}
