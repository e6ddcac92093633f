// Command xdpvip is a keepalived-compatible VRRP and load-balancer daemon
// with an XDP dataplane. Each subcommand lives in its own file.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one subcommand: it parses its own flags from args and returns
// the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

// commands is filled by the init functions of the subcommand files.
var commands = map[string]command{}

func register(name, summary string, run func(args []string) int) {
	commands[name] = command{summary: summary, run: run}
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: xdpvip COMMAND [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'xdpvip COMMAND --help' for a command's flags.\n"+
		"keepalived's command line works too: 'xdpvip -f FILE -n -l -D' runs the\n"+
		"daemon, 'xdpvip -t -f FILE' checks FILE, 'xdpvip -v' prints the version.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	switch name {
	case "-h", "--help", "help":
		usage()
		return
	}
	if len(name) > 1 && name[0] == '-' {
		// keepalived's command line: xdpvip -f FILE -D, xdpvip -t -f FILE.
		var err error
		if name, args, err = keepalivedArgs(os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "xdpvip: %v\n", err)
			os.Exit(2)
		}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "xdpvip: unknown command %q\n", name)
		usage()
		os.Exit(2)
	}
	os.Exit(cmd.run(args))
}
