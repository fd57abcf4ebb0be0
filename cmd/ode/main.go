// Command ode is an XMPP server: `ode serve` runs it, `ode user …` manages
// accounts (also while the server runs), `ode check` validates a config
// file, `ode version` prints the version. `ode help` lists the commands.
package main

import (
	"os"

	"github.com/ode-xmpp/ode/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
