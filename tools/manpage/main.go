// Command manpage writes xdpvip(8) and a bash completion script from the
// built binary's own help (`xdpvip --help` and `xdpvip COMMAND --help`), so
// the manual and the completion can never drift from the CLI.
//
//	go run ./tools/manpage -bin bin/xdpvip -man out/xdpvip.8 -completion out/xdpvip.bash
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// command is one subcommand as the binary describes it.
type command struct {
	name, summary string
	help          string   // the flag list, as `COMMAND --help` prints it
	flags         []string // long and short flag names, for completion
}

func main() {
	bin := flag.String("bin", "bin/xdpvip", "the xdpvip binary to describe")
	man := flag.String("man", "", "write the man page here")
	comp := flag.String("completion", "", "write the bash completion here")
	date := flag.String("date", "", "date for the man page footer (default: none)")
	version := flag.String("version", "", "version for the man page footer")
	flag.Parse()
	cmds, err := describe(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manpage:", err)
		os.Exit(1)
	}
	if *man != "" {
		if err := os.WriteFile(*man, []byte(roff(cmds, *version, *date)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "manpage:", err)
			os.Exit(1)
		}
	}
	if *comp != "" {
		if err := os.WriteFile(*comp, []byte(completion(cmds)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "manpage:", err)
			os.Exit(1)
		}
	}
}

// helpOf runs the binary with args and returns what it printed (help goes
// to standard error, as pflag does).
func helpOf(bin string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

var (
	commandLine = regexp.MustCompile(`^  ([a-z][a-z-]*)\s+(.*)$`)
	flagName    = regexp.MustCompile(`(?:^|\s)(-[a-zA-Z]|--[a-z][a-z0-9-]*)`)
)

func describe(bin string) ([]command, error) {
	top, err := helpOf(bin, "--help")
	if err != nil {
		return nil, err
	}
	var cmds []command
	in := false
	sc := bufio.NewScanner(strings.NewReader(top))
	for sc.Scan() {
		line := sc.Text()
		if line == "commands:" {
			in = true
			continue
		}
		if in {
			m := commandLine.FindStringSubmatch(line)
			if m == nil {
				in = line != "" && in
				continue
			}
			cmds = append(cmds, command{name: m[1], summary: m[2]})
		}
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("%s --help lists no commands", bin)
	}
	for i := range cmds {
		h, err := helpOf(bin, cmds[i].name, "--help")
		if err != nil {
			return nil, err
		}
		var body []string
		for _, l := range strings.Split(strings.TrimRight(h, "\n"), "\n") {
			if strings.HasPrefix(l, "Usage of ") {
				continue
			}
			body = append(body, l)
			if fl := strings.TrimSpace(l); strings.HasPrefix(fl, "-") {
				// Only the names before the first description word.
				head := fl
				if j := strings.Index(fl, "  "); j > 0 {
					head = fl[:j]
				}
				for _, m := range flagName.FindAllStringSubmatch(head, -1) {
					cmds[i].flags = append(cmds[i].flags, m[1])
				}
			}
		}
		cmds[i].help = strings.Join(body, "\n")
	}
	return cmds, nil
}

// esc makes text safe for roff: backslashes, and a leading dot or quote.
func esc(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func roff(cmds []command, version, date string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH XDPVIP 8 %q %q \"System Administration\"\n", date, "xdpvip "+version)
	b.WriteString(".SH NAME\nxdpvip \\- keepalived\\-compatible VRRP and LVS load\\-balancer daemon with an XDP dataplane\n")
	b.WriteString(".SH SYNOPSIS\n.B xdpvip\n.I command\n.RI [ flags ]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString("xdpvip reads keepalived.conf(5) and does what keepalived(8) does: VRRP (RFC 3768 and RFC 5798, IPv4 and IPv6) ")
	b.WriteString("with virtual IP addresses, gratuitous ARP and unsolicited neighbour advertisements, tracking and notify scripts, ")
	b.WriteString("health checks of real servers, and LVS direct\\-routing virtual servers. VRRP adverts are received and validated ")
	b.WriteString("by an XDP program, and VIP traffic is forwarded to the real servers in XDP; kernel IPVS is used where XDP is not.\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, ".SS %s\n%s\n", esc(c.name), esc(c.summary))
		if strings.TrimSpace(c.help) != "" {
			b.WriteString(".PP\n.nf\n")
			for _, l := range strings.Split(c.help, "\n") {
				b.WriteString(esc(l) + "\n")
			}
			b.WriteString(".fi\n")
		}
	}
	b.WriteString(".SH SIGNALS\n")
	b.WriteString(".TP\n.B SIGHUP\nReload the configuration as a difference: instances that did not change keep their state and VIPs.\n")
	b.WriteString(".TP\n.BR SIGTERM \", \" SIGINT\nLeave gracefully: a priority\\-0 advert, the VIPs removed, notify_stop run.\n")
	b.WriteString(".SH FILES\n")
	b.WriteString(".TP\n.I /etc/keepalived/keepalived.conf\nThe configuration, in keepalived.conf(5) syntax.\n")
	b.WriteString(".TP\n.I /etc/default/xdpvip\nFlags for the systemd service.\n")
	b.WriteString(".TP\n.I /run/xdpvip/xdpvip.sock\nThe control socket that status, lvs and reload use.\n")
	b.WriteString(".TP\n.I /sys/fs/bpf/xdpvip/\nPinned XDP links and maps, one directory per interface.\n")
	b.WriteString(".SH SEE ALSO\n.BR keepalived (8),\n.BR keepalived.conf (5),\n.BR ipvsadm (8),\n.BR bpftool (8)\n")
	return b.String()
}

func completion(cmds []command) string {
	var b strings.Builder
	b.WriteString("# bash completion for xdpvip, generated from its --help\n")
	b.WriteString("_xdpvip() {\n")
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]}\n")
	b.WriteString("  if [ \"$COMP_CWORD\" -eq 1 ]; then\n")
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	fmt.Fprintf(&b, "    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(names, " "))
	b.WriteString("  case ${COMP_WORDS[1]} in\n")
	for _, c := range cmds {
		if len(c.flags) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c.name, strings.Join(c.flags, " "))
	}
	b.WriteString("  esac\n}\ncomplete -o default -F _xdpvip xdpvip\n")
	return b.String()
}
