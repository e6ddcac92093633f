// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): READY=1, RELOADING=1, STOPPING=1, STATUS=… and the
// watchdog's WATCHDOG=1, as datagrams on the unix socket named by
// $NOTIFY_SOCKET. Without $NOTIFY_SOCKET (not started by systemd with
// Type=notify) every call is a no-op, so the daemon calls it unconditionally.
//
// The protocol is small enough that a dependency would add more than it
// saves: one datagram per message, an abstract socket when the name starts
// with '@', and $WATCHDOG_USEC / $WATCHDOG_PID for the watchdog interval.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends notifications to one socket. The zero value is disabled.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET (disabled when unset).
func FromEnv() *Notifier {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return &Notifier{}
	}
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:] // abstract namespace
	}
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Send sends one notification of newline-separated KEY=VALUE lines.
func (n *Notifier) Send(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready tells systemd that start-up is complete.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1", "STATUS="+status)
}

// Reloading tells systemd a reload has started; call Ready when it ends.
// MONOTONIC_USEC is required by Type=notify-reload and harmless otherwise.
func (n *Notifier) Reloading() error {
	return n.Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping tells systemd the daemon is leaving.
func (n *Notifier) Stopping(status string) error {
	return n.Send("STOPPING=1", "STATUS="+status)
}

// Status updates the free-form status line `systemctl status` shows.
func (n *Notifier) Status(status string) error { return n.Send("STATUS=" + status) }

// Watchdog pings the service watchdog.
func (n *Notifier) Watchdog() error { return n.Send("WATCHDOG=1") }

// WatchdogInterval is the interval systemd expects pings at ($WATCHDOG_USEC),
// or 0 when the watchdog is off or meant for another process
// ($WATCHDOG_PID names a different PID). Ping at half of it, as sd_watchdog_enabled(3) advises.
func WatchdogInterval() (time.Duration, error) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, nil
	}
	usec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || usec <= 0 {
		return 0, fmt.Errorf("sd_notify: bad WATCHDOG_USEC %q", s)
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("sd_notify: bad WATCHDOG_PID %q", p)
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	return time.Duration(usec) * time.Microsecond, nil
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
