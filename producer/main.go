// Command producer reads a MySQL/MariaDB binlog and publishes every row
// change as Avro to one Kafka topic per table. See README.md.
//
// Subcommands: run (stream), check (validate the source and the path),
// snapshot (request a snapshot), verify (compare the source with BigQuery).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/strait-cdc/strait/pkg/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(service.ExitCode(err))
	}
}
