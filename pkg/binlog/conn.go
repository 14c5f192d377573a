package binlog

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// addr returns "host:port" of the source.
func (c *Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// dial opens a query connection to the source (schema reads, snapshots,
// checks). The binlog stream itself is opened by the BinlogSyncer.
func dial(ctx context.Context, cfg *Config, db string) (*client.Conn, error) {
	conn, err := client.ConnectWithContext(ctx, cfg.addr(), cfg.User, cfg.Password, db, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", cfg.addr(), cfg.User, err)
	}
	return conn, nil
}

// text returns a cell of a query result as a string of its own. go-mysql's
// GetString returns a view of the result's buffer, which the next query on
// the connection reuses: a schema built from such a string would change
// under our feet.
func text(r *mysql.Result, row, col int) string {
	s, _ := r.GetString(row, col)
	return strings.Clone(s)
}
