package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPingBetweenHosts(t *testing.T) {
	n := New(t)
	a := n.AddHost("a", "192.0.2.1/24", WithAddr("2001:db8::1/64"), WithMAC("02:00:00:00:00:0a"))
	b := n.AddHost("b", "192.0.2.2/24", WithAddr("2001:db8::2/64"), WithMAC("02:00:00:00:00:0b"))

	tests := []struct {
		from, to *Host
		family   int
	}{
		{a, b, 4}, {b, a, 4}, {a, b, 6}, {b, a, 6},
	}
	for _, tc := range tests {
		dst := tc.to.Addr(tc.family)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := tc.from.Exec(ctx, "ping", "-c1", "-W2", dst.String())
		cancel()
		if err != nil {
			t.Fatalf("%s -> %s: %v", tc.from.Name(), dst, err)
		}
		if !bytes.Contains(out, []byte("1 received")) {
			t.Errorf("%s -> %s: unexpected ping output %q", tc.from.Name(), dst, out)
		}
		nb, err := tc.from.Neigh(dst)
		if err != nil {
			t.Fatalf("neighbour %s on %s: %v", dst, tc.from.Name(), err)
		}
		if nb.MAC.String() != tc.to.MAC().String() || !nb.Usable() {
			t.Errorf("neighbour %s on %s = %v, want MAC %s", dst, tc.from.Name(), nb, tc.to.MAC())
		}
	}
	if got := a.MAC().String(); got != "02:00:00:00:00:0a" {
		t.Errorf("WithMAC: MAC() = %s", got)
	}
	if _, err := a.Neigh(netip.MustParseAddr("192.0.2.99")); !errors.Is(err, ErrNoNeighbor) {
		t.Errorf("Neigh(unknown) error = %v, want ErrNoNeighbor", err)
	}
}

func TestDoRunsInNamespace(t *testing.T) {
	n := New(t)
	h := n.AddHost("h", "198.51.100.7/24", WithIface("lan0"), WithMAC("02:00:00:00:01:07"))
	var mac string
	var addrs []string
	h.MustDo(func() error {
		ifi, err := net.InterfaceByName("lan0")
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr.String()
		as, err := ifi.Addrs()
		for _, a := range as {
			addrs = append(addrs, a.String())
		}
		return err
	})
	if mac != "02:00:00:00:01:07" {
		t.Errorf("inside Do: lan0 MAC = %s", mac)
	}
	if !strings.Contains(strings.Join(addrs, " "), "198.51.100.7/24") {
		t.Errorf("inside Do: lan0 addresses = %v", addrs)
	}
	// The calling goroutine's thread is not moved.
	if _, err := net.InterfaceByName("lan0"); err == nil {
		t.Errorf("lan0 visible outside the namespace")
	}
	wantErr := errors.New("boom")
	if err := h.Do(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do error = %v, want %v", err, wantErr)
	}
}

func TestSetLinkCutsCable(t *testing.T) {
	n := New(t)
	a := n.AddHost("a", "192.0.2.1/24")
	b := n.AddHost("b", "192.0.2.2/24")
	carrier := func(h *Host) (string, error) {
		out, err := h.Exec(context.Background(), "cat", "/sys/class/net/"+h.Iface()+"/carrier")
		return strings.TrimSpace(string(out)), err
	}
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := a.Exec(ctx, "ping", "-c1", "-W1", "192.0.2.2")
		return err
	}
	if err := ping(); err != nil {
		t.Fatalf("ping before cut: %v", err)
	}
	n.SetLink(b, false)
	Eventually(t, 5*time.Second, func() error {
		if c, _ := carrier(b); c != "0" {
			return fmt.Errorf("carrier of b = %q, want 0", c)
		}
		return nil
	})
	if err := ping(); err == nil {
		t.Errorf("ping succeeded across a cut link")
	}
	n.SetLink(b, true)
	Eventually(t, 5*time.Second, func() error {
		if c, _ := carrier(b); c != "1" {
			return fmt.Errorf("carrier of b = %q, want 1", c)
		}
		return ping()
	})
}

func TestStartKilledAtCleanup(t *testing.T) {
	var p *Process
	var nsName string
	t.Run("inner", func(t *testing.T) {
		n := New(t)
		h := n.AddHost("srv", "192.0.2.5/24")
		nsName = h.NS()
		p = h.Start("sh", "-c", "echo started; ip -o link show eth0; exec sleep 600")
		Eventually(t, 5*time.Second, func() error {
			if !strings.Contains(p.Log(), "eth0") {
				return fmt.Errorf("log so far: %q", p.Log())
			}
			return nil
		})
	})
	if !p.Exited() {
		t.Fatalf("process still running after cleanup")
	}
	if err := p.Wait(); err == nil {
		t.Errorf("process exit = nil, want killed")
	}
	if _, err := os.Stat("/var/run/netns/" + nsName); !os.IsNotExist(err) {
		t.Errorf("namespace %s left behind (stat err %v)", nsName, err)
	}
	if err := syscall.Kill(p.Cmd.Process.Pid, 0); err == nil {
		t.Errorf("pid %d still exists", p.Cmd.Process.Pid)
	}
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	var prefix string
	t.Run("inner", func(t *testing.T) {
		n := New(t)
		prefix = n.Prefix()
		n.AddHost("a", "192.0.2.1/24")
		n.AddHost("b", "")
	})
	ents, err := os.ReadDir("/var/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

// Parallel tests use the same host names and addresses without colliding.
func TestParallelNetworksDoNotCollide(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			n := New(t)
			a := n.AddHost("a", "192.0.2.1/24")
			n.AddHost("b", "192.0.2.2/24")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := a.Exec(ctx, "ping", "-c1", "-W2", "192.0.2.2"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	if err := Poll(time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Errorf("Poll = %v after %d calls, want nil after 3", err, calls)
	}
	want := errors.New("never")
	start := time.Now()
	if err := Poll(20*time.Millisecond, func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Poll = %v, want %v", err, want)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Errorf("Poll gave up before its timeout")
	}
}
