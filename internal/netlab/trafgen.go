package netlab

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoTrafgenTotal is returned when trafgen's output has no total.
var ErrNoTrafgenTotal = errors.New("no \"packets outgoing\" line in trafgen's output")

// trafgenTotal matches trafgen's exit summary, "   2227968 packets outgoing".
var trafgenTotal = regexp.MustCompile(`(?m)^\s*(\d+) packets outgoing\s*$`)

// TrafgenConfig renders frames as a trafgen packet configuration: one
// `{ 0x.., ... }` block per frame, which trafgen sends round robin.
func TrafgenConfig(frames [][]byte) string {
	var b strings.Builder
	for _, f := range frames {
		b.WriteString("{ ")
		for i, c := range f {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "0x%02x", c)
		}
		b.WriteString(" }\n")
	}
	return b.String()
}

// ParseTrafgenSent returns the number of frames trafgen says it sent.
func ParseTrafgenSent(out string) (uint64, error) {
	m := trafgenTotal.FindStringSubmatch(out)
	if m == nil {
		return 0, ErrNoTrafgenTotal
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// TrafgenArgs are trafgen's arguments to send conf's frames out of dev
// from cpus forked senders at the highest rate it can, without retuning
// the machine's socket memory or IRQ affinities (--no-sock-mem,
// --notouch-irq) and without per-CPU statistics. extra go last.
func TrafgenArgs(dev, conf string, cpus int, extra ...string) []string {
	return append([]string{"--dev", dev, "--conf", conf, "--cpus", strconv.Itoa(cpus),
		"--no-sock-mem", "--notouch-irq", "--no-cpu-stats"}, extra...)
}

// ErrTrafgenStuck is returned by StopTrafgen when trafgen ignored SIGINT.
var ErrTrafgenStuck = errors.New("trafgen did not stop on SIGINT")

// StopTrafgen interrupts trafgen, waits up to timeout for it (then kills
// it) and returns the frames it says it sent. trafgen's parent does not
// pass SIGINT on to its forked senders: the whole process group is
// interrupted, as a terminal's ^C does. An exit status from SIGINT is
// expected and not an error.
func StopTrafgen(p *Process, timeout time.Duration) (uint64, error) {
	if !p.Exited() {
		if err := p.SignalGroup(syscall.SIGINT); err != nil {
			return 0, fmt.Errorf("netlab: SIGINT trafgen: %w", err)
		}
	}
	select {
	case <-p.Done():
	case <-time.After(timeout):
		p.Kill()
		return 0, ErrTrafgenStuck
	}
	n, err := ParseTrafgenSent(p.Log())
	if err != nil {
		return 0, fmt.Errorf("%w:\n%s", err, p.Log())
	}
	return n, nil
}
