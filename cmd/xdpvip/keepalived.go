package main

import (
	"fmt"
	"strings"
)

// keepalivedArgs maps a keepalived command line (`keepalived -f FILE -D`,
// `keepalived -t -f FILE`, `keepalived -v`) onto an xdpvip subcommand, so
// an operator's scripts and habits carry over: `xdpvip -t -f FILE` checks,
// `xdpvip -f FILE -n -l -D` runs. `run` itself accepts keepalived's
// run-time flags; this only picks the subcommand and, for a config test,
// keeps the flags check-config knows.
func keepalivedArgs(args []string) (cmd string, out []string, err error) {
	test, version := false, false
	for _, a := range args {
		switch {
		case a == "-t" || a == "--config-test" || strings.HasPrefix(a, "--config-test="):
			test = true
		case a == "-v" || a == "--version":
			version = true
		}
		// Bundled short flags (-nlD, -tf FILE) as getopt allows.
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			test = test || strings.ContainsRune(a[1:], 't')
			version = version || strings.ContainsRune(a[1:], 'v')
		}
	}
	switch {
	case version:
		return "version", nil, nil
	case !test:
		return "run", args, nil
	}
	// A config test: keep -f/--use-file and -i/--config-id with their values.
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "-f", "--use-file", "-i", "--config-id":
			flag := "-f"
			if name == "-i" || name == "--config-id" {
				flag = "-i"
			}
			if !hasVal {
				if i+1 >= len(args) {
					return "", nil, fmt.Errorf("%s needs a value", name)
				}
				i++
				val = args[i]
			}
			out = append(out, flag, val)
		case "--config-test":
			if hasVal {
				return "", nil, fmt.Errorf("--config-test=%s: xdpvip writes the check to stderr only", val)
			}
		default:
			if len(a) > 2 && a[0] == '-' && a[1] != '-' {
				// -tf FILE, -tfFILE: split the bundle.
				for j := 1; j < len(a); j++ {
					switch c := a[j]; c {
					case 't', 'n', 'l', 'D':
					case 'f', 'i':
						v := a[j+1:]
						if v == "" {
							if i+1 >= len(args) {
								return "", nil, fmt.Errorf("-%c needs a value", c)
							}
							i++
							v = args[i]
						}
						out = append(out, "-"+string(c), v)
						j = len(a)
					default:
						return "", nil, fmt.Errorf("-%c: not a keepalived --config-test option xdpvip knows", c)
					}
				}
				continue
			}
			switch a {
			case "-t", "-n", "--dont-fork", "-l", "--log-console", "-D", "--log-detail":
			default:
				return "", nil, fmt.Errorf("%s: not a keepalived --config-test option xdpvip knows", a)
			}
		}
	}
	return "check-config", out, nil
}
