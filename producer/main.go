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

	"github.com/strait-cdc/strait/pkg/release"
	"github.com/strait-cdc/strait/pkg/service"
)

// version is the release this binary is built from, or what the build
// stamped in its place: make build passes -ldflags "-X
// main.version=$(git describe --tags --always --dirty)". `producer version`
// prints it with the commit (release.Describe); records and checkpoints
// carry it as it is.
var version = release.Version

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(service.ExitCode(err))
	}
}

// versionLine is what the version command prints after the program name.
func versionLine() string { return release.Describe(version) }
