package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeSystemd listens where $NOTIFY_SOCKET points, as systemd does.
func fakeSystemd(t *testing.T, abstract bool) *net.UnixConn {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	env := name
	if abstract {
		name = "\x00xdpvip-sdnotify-test-" + strconv.Itoa(os.Getpid())
		env = "@" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", env)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestMessages(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		c := fakeSystemd(t, abstract)
		n := FromEnv()
		if !n.Enabled() {
			t.Fatal("notifier disabled with NOTIFY_SOCKET set")
		}
		if err := n.Ready("2 instances"); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "READY=1\nSTATUS=2 instances\n" {
			t.Errorf("ready: %q", got)
		}
		if err := n.Reloading(); err != nil {
			t.Fatal(err)
		}
		got := recv(t, c)
		if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Errorf("reloading: %q", got)
		}
		usec, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")), 10, 64)
		if err != nil || usec <= 0 {
			t.Errorf("reloading: MONOTONIC_USEC not a positive integer: %q", got)
		}
		if err := n.Watchdog(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "WATCHDOG=1\n" {
			t.Errorf("watchdog: %q", got)
		}
		if err := n.Stopping("leaving"); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "STOPPING=1\nSTATUS=leaving\n" {
			t.Errorf("stopping: %q", got)
		}
	}
}

func TestDisabledWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Ready("x"); err != nil {
		t.Fatalf("disabled notifier returned %v", err)
	}
}

func TestSocketGoneIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := FromEnv().Ready("x"); err == nil {
		t.Fatal("no error for a missing socket")
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"10000000", "", 10 * time.Second, false},
		{"10000000", me, 10 * time.Second, false},
		{"10000000", "1", 0, false}, // meant for another process
		{"abc", "", 0, true},
		{"0", "", 0, true},
		{"10000000", "x", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("USEC=%q PID=%q: got %v, %v; want %v, err %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}
