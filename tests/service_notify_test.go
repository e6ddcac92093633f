package tests

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// notifyLog collects what the daemon sends to a fake systemd's
// $NOTIFY_SOCKET, one datagram a message.
type notifyLog struct {
	msgs chan string
}

func fakeNotifySocket(t *testing.T) *notifyLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &notifyLog{msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			l.msgs <- string(buf[:n])
		}
	}()
	t.Setenv("NOTIFY_SOCKET", path)
	return l
}

// next waits for a message that contains want.
func (l *notifyLog) next(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-l.msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q from the daemon within %v", want, timeout)
		}
	}
}

// pings counts the watchdog pings received during d.
func (l *notifyLog) pings(d time.Duration) int {
	n := 0
	end := time.After(d)
	for {
		select {
		case m := <-l.msgs:
			if m == "WATCHDOG=1\n" {
				n++
			}
		case <-end:
			return n
		}
	}
}

// TestServiceNotify runs the daemon as systemd's Type=notify would, against
// a fake $NOTIFY_SOCKET with a 400 ms watchdog: READY=1 once it serves,
// WATCHDOG=1 pings at half the interval, RELOADING=1 then READY=1 around a
// SIGHUP, STOPPING=1 on SIGTERM.
func TestServiceNotify(t *testing.T) {
	l := fakeNotifySocket(t)
	t.Setenv("WATCHDOG_USEC", "400000")
	n := testnet.New(t)
	a := n.AddHost("lvs1", "192.0.2.11/24")
	node := StartXdpvip(t, a, VRRPConf("lvs1", 51, 100, "1", "192.0.2.100/24", ""), "--dataplane", "none")
	l.next(t, "READY=1", 5*time.Second)
	// 1.2 s at one ping every 200 ms: at least 4 pings however loaded the machine.
	if got := l.pings(1200 * time.Millisecond); got < 4 {
		t.Errorf("%d watchdog pings in 1.2 s with WATCHDOG_USEC=400000, want at least 4", got)
	}
	if err := node.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l.next(t, "RELOADING=1", 5*time.Second)
	l.next(t, "READY=1", 5*time.Second)
	node.Stop(syscall.SIGTERM)
	l.next(t, "STOPPING=1", 5*time.Second)
}
