// Command consumer applies the change topics written by the producer to
// BigQuery. It is being built (issue "Consumer: apply the change topics to
// BigQuery"); until then it only prints its version.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("strait consumer", version)
		return
	}
	fmt.Fprintln(os.Stderr, "consumer: not implemented yet; see README, \"Status\"")
	os.Exit(2)
}
