package binlog

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
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
