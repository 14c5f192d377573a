// Command consumer applies the change topics written by the producer to
// BigQuery as CDC upserts and deletes. See README.md, "Consumer".
//
// Subcommands: run (consume until stopped), reset (move the group's
// offsets to replay), tail (print changes as JSON lines), version.
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
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(service.ExitCode(err))
	}
}
