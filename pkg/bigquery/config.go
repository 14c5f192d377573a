package bigquery

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The write modes (Config.Mode).
const (
	// ModeUpsert applies each change to a table that holds the source
	// state: BigQuery CDC upserts and deletes by primary key.
	ModeUpsert = "upsert"
	// ModeAppend appends each change as a row of a changelog table, with a
	// view of the latest row per primary key.
	ModeAppend = "append"
)

// Config is where and how changes are written to BigQuery.
type Config struct {
	// Project is the Google Cloud project of the dataset.
	Project string `yaml:"project" help:"Google Cloud project of the dataset"`
	// Dataset receives every table; created (in Location) when missing.
	Dataset string `yaml:"dataset" help:"dataset that receives the tables"`
	// Location of a dataset strait creates; default US.
	Location string `yaml:"location" help:"location of the dataset when strait creates it"`
	// TableTemplate names a source table's BigQuery table: {database} and
	// {table} are replaced by the source names; default "{database}_{table}".
	TableTemplate string `yaml:"table_template" help:"BigQuery table name of a source table: {database} and {table} are replaced"`
	// Mode is how changes are written: ModeUpsert (default) or ModeAppend.
	// In upsert mode a table without a primary key is written in append
	// mode, with a warning.
	Mode string `yaml:"mode" help:"upsert (tables hold the source state) or append (changelog tables and a view of the latest rows)"`
	// ViewSuffix names the view of a changelog table in append mode: the
	// table's name followed by the suffix; default "_latest".
	ViewSuffix string `yaml:"view_suffix" help:"append mode: the latest-row view of a changelog table is named <table><view_suffix>"`
	// MaxStaleness is the max_staleness of tables strait creates: how old
	// a query's view of the CDC changes may be, traded against merge cost;
	// default 15m.
	MaxStaleness time.Duration `yaml:"max_staleness" help:"max_staleness of new tables"`
	// CredentialsFile is a service-account key file; default: Application
	// Default Credentials.
	CredentialsFile string `yaml:"credentials_file" help:"service-account key file (default: Application Default Credentials)"`
	// Endpoint overrides the REST endpoint (e.g. a local BigQuery).
	Endpoint string `yaml:"endpoint" help:"REST endpoint override, e.g. http://127.0.0.1:9050/bigquery/v2/"`
	// WriteEndpoint overrides the Storage Write API endpoint (host:port).
	WriteEndpoint string `yaml:"write_endpoint" help:"Storage Write API endpoint override (host:port)"`
	// Insecure talks to the endpoint overrides without TLS or credentials,
	// as to a local BigQuery.
	Insecure bool `yaml:"insecure" help:"no TLS and no credentials for the endpoint overrides (local endpoint only)"`
	// MaxRequestBytes caps an AppendRows request's rows; default 9 MiB,
	// under BigQuery's 10 MB request limit.
	MaxRequestBytes int `yaml:"max_request_bytes" help:"largest AppendRows request (below BigQuery's 10 MB)"`
	// RetryMaxBackoff caps the wait between two attempts of an append
	// BigQuery may accept later (over quota, unavailable); the wait starts
	// at 500ms and doubles. Default 1m.
	RetryMaxBackoff time.Duration `yaml:"retry_max_backoff" help:"longest wait between retries of a failed append, and of a table waiting for BigQuery to see a new column or a re-created table"`
	// DeleteWindow is how long BigQuery remembers a deleted row (two days,
	// "Stream table updates with change data capture"): an upsert whose
	// source commit is older is counted and warned about, since applying
	// it may bring back a row deleted since. Default 48h; 0 turns the
	// check off.
	DeleteWindow time.Duration `yaml:"delete_window" help:"how long BigQuery remembers deletes; older upserts are counted and warned about"`
	// WriteConnections is how many Storage Write API connections the
	// tables share, for CDC tables and again for plain (append mode)
	// tables, which may not share a connection with them; each table's
	// stream goes to the least used. 0: one connection per table. Default
	// 8.
	WriteConnections int `yaml:"write_connections" help:"Storage Write API connections shared by the tables, per kind (CDC, plain); 0 for one per table"`
	// StreamIdleTimeout closes the stream of a table that had nothing to
	// write for that long, giving back its share of a connection; default
	// 5m.
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout" help:"close a table's stream after this long without writes"`
	// RequestTimeout bounds how long the writer waits for an endpoint to
	// accept a connection (and, for the Storage Write API, to finish the
	// handshake) and for a REST answer to begin: an endpoint that hangs
	// counts as unavailable after it. Default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout" help:"how long a BigQuery endpoint may take to accept a connection or start an answer before it counts as unavailable"`
	// WatermarkTable is the table of the group's "applied through"
	// watermark (README, "A consistent cut across tables"): one row per
	// consumer group and source. Empty: no watermark and no as-of views.
	// Default "_strait_watermark".
	WatermarkTable string `yaml:"watermark_table" help:"table of the group's applied-through watermark per source; empty: none, and no as-of views"`
	// AsOfSuffix names the view of a changelog table as of the watermark
	// in append mode: the table's name followed by the suffix; default
	// "_as_of_watermark".
	AsOfSuffix string `yaml:"as_of_suffix" help:"append mode: the view of a changelog table as of the watermark is named <table><as_of_suffix>"`

	// Group and Source are kafka.group_id and kafka.topic_prefix: whose
	// watermark the as-of views read.
	Group, Source string `yaml:"-"`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	c.Location = "US"
	c.TableTemplate = "{database}_{table}"
	c.Mode = ModeUpsert
	c.ViewSuffix = "_latest"
	c.MaxStaleness = 15 * time.Minute
	c.MaxRequestBytes = 9 << 20
	c.RetryMaxBackoff = time.Minute
	c.DeleteWindow = 48 * time.Hour
	c.WriteConnections = 8
	c.StreamIdleTimeout = 5 * time.Minute
	c.RequestTimeout = 30 * time.Second
	c.WatermarkTable = "_strait_watermark"
	c.AsOfSuffix = "_as_of_watermark"
}

// Validate reports every problem of the configuration, naming the key.
func (c *Config) Validate() error {
	var errs []error
	if c.Project == "" {
		errs = append(errs, errors.New("bigquery.project: required"))
	}
	if c.Dataset == "" {
		errs = append(errs, errors.New("bigquery.dataset: required"))
	}
	if !strings.Contains(c.TableTemplate, "{table}") {
		errs = append(errs, fmt.Errorf("bigquery.table_template: %q must contain {table}", c.TableTemplate))
	}
	if c.Mode != ModeUpsert && c.Mode != ModeAppend {
		errs = append(errs, fmt.Errorf("bigquery.mode: %q, want %s or %s", c.Mode, ModeUpsert, ModeAppend))
	}
	if c.ViewSuffix == "" || !tableNameChars(c.ViewSuffix) {
		errs = append(errs, fmt.Errorf("bigquery.view_suffix: %q, want letters, digits, '_' or '-'", c.ViewSuffix))
	}
	if !tableNameChars(c.WatermarkTable) {
		errs = append(errs, fmt.Errorf("bigquery.watermark_table: %q, want letters, digits, '_' or '-'", c.WatermarkTable))
	}
	if c.AsOfSuffix == "" || !tableNameChars(c.AsOfSuffix) || c.AsOfSuffix == c.ViewSuffix {
		errs = append(errs, fmt.Errorf("bigquery.as_of_suffix: %q, want letters, digits, '_' or '-', not bigquery.view_suffix", c.AsOfSuffix))
	}
	if c.MaxStaleness < 0 {
		errs = append(errs, fmt.Errorf("bigquery.max_staleness: %s is negative", c.MaxStaleness))
	}
	if c.MaxRequestBytes < 1<<20 || c.MaxRequestBytes > 10<<20-64<<10 {
		errs = append(errs, fmt.Errorf("bigquery.max_request_bytes: %d, want 1 MiB to 9.9 MiB", c.MaxRequestBytes))
	}
	if c.RetryMaxBackoff <= 0 {
		errs = append(errs, fmt.Errorf("bigquery.retry_max_backoff: %s, want more than 0", c.RetryMaxBackoff))
	}
	if c.DeleteWindow < 0 {
		errs = append(errs, fmt.Errorf("bigquery.delete_window: %s is negative", c.DeleteWindow))
	}
	if c.WriteConnections < 0 {
		errs = append(errs, fmt.Errorf("bigquery.write_connections: %d is negative", c.WriteConnections))
	}
	if c.StreamIdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("bigquery.stream_idle_timeout: %s, want more than 0", c.StreamIdleTimeout))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("bigquery.request_timeout: %s, want more than 0", c.RequestTimeout))
	}
	if c.Insecure && c.Endpoint == "" && c.WriteEndpoint == "" {
		errs = append(errs, errors.New("bigquery.insecure: only allowed with bigquery.endpoint or bigquery.write_endpoint"))
	}
	return errors.Join(errs...)
}

// TableName returns the BigQuery table of a source table: the template
// with {database} and {table} replaced, and characters a table name cannot
// hold replaced by '_'.
func (c *Config) TableName(database, table string) string {
	s := strings.NewReplacer("{database}", database, "{table}", table).Replace(c.TableTemplate)
	b := []byte(s)
	for i, ch := range b {
		if !tableNameChar(ch) {
			b[i] = '_'
		}
	}
	return string(b)
}

func tableNameChar(ch byte) bool {
	return ch == '_' || ch == '-' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
}

func tableNameChars(s string) bool {
	for i := range len(s) {
		if !tableNameChar(s[i]) {
			return false
		}
	}
	return true
}

// clientOptions are the options of Google's clients: rest for the REST API
// (datasets, tables), grpcOpts for the Storage Write and Read APIs, which
// share one endpoint.
func (c *Config) clientOptions() (rest, grpcOpts []option.ClientOption) {
	if c.CredentialsFile != "" {
		creds := option.WithAuthCredentialsFile(option.ServiceAccount, c.CredentialsFile)
		rest, grpcOpts = append(rest, creds), append(grpcOpts, creds)
	}
	if c.Endpoint != "" {
		rest = append(rest, option.WithEndpoint(c.Endpoint))
	}
	if c.WriteEndpoint != "" {
		grpcOpts = append(grpcOpts, option.WithEndpoint(c.WriteEndpoint))
	}
	if c.Insecure {
		rest = append(rest, option.WithoutAuthentication())
		grpcOpts = append(grpcOpts, option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			option.WithGRPCConnectionPool(1))
	}
	return rest, grpcOpts
}
