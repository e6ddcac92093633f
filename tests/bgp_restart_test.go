package tests

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestBGPGracefulRestartKeepsRoutes: with graceful_restart, a daemon
// that is SIGKILLed (its XDP program keeps forwarding) and started again
// never takes its next hop off the router, and 300 downloads go on. The
// restarted daemon sees the forwarding it inherited and sets the Restart
// State bit.
func TestBGPGracefulRestartKeepsRoutes(t *testing.T) {
	l := newBGPLab(t, ecmpNodes, false, func(i int, h *testnet.Host) string {
		c := ecmpConfReals(h.Name(), i%2 == 1, false, 2, false)
		return strings.Replace(c, "        hold_time 3\n", "        hold_time 3\n        graceful_restart 30\n", 1)
	})
	l.WaitNextHops(ecmpNodes, 20*time.Second)
	const n = 300
	dl := l.startDownloads(n, 40000)

	var (
		mu      sync.Mutex
		fewest  = ecmpNodes
		stop    = make(chan struct{})
		watched = make(chan struct{})
	)
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if h := len(l.NextHops()); h < ecmpNodes {
				mu.Lock()
				fewest = min(fewest, h)
				mu.Unlock()
			}
		}
	}()
	node := l.Nodes[0]
	if err := node.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = node.Proc.Wait()
	time.Sleep(2 * ecmpHold) // longer than the hold time: no goodbye, no keepalives
	restarted := time.Now()
	l.Start.Run(func() { node.Restart("--dataplane", "xdp") })
	testnet.Eventually(t, 15*time.Second, func() error {
		st, err := node.StatusErr()
		if err != nil || st.BGP == nil {
			return fmt.Errorf("%s: no bgp status yet (%v)", node.Host.Name(), err)
		}
		b := st.BGP
		if len(b.Sessions) != 1 || b.Sessions[0].State != "ESTABLISHED" || len(b.Routes) != 1 || !b.Routes[0].Announced {
			return fmt.Errorf("%s: %+v", node.Host.Name(), b)
		}
		return nil
	})
	t.Logf("restarted daemon re-established and announced %v after starting", time.Since(restarted).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	<-watched
	if !strings.Contains(node.Proc.Log(), "restarting: a previous daemon left the ECMP forwarding on") {
		t.Errorf("the restarted daemon did not notice its inheritance:\n%s", node.Proc.Log())
	}
	mu.Lock()
	got := fewest
	mu.Unlock()
	t.Logf("fewest next hops during the SIGKILL and restart: %d of %d", got, ecmpNodes)
	if got != ecmpNodes {
		t.Errorf("the router dropped the restarting node's route (down to %d next hops)", got)
	}
	done, resets := dl.Wait()
	t.Logf("%d of %d downloads survived the restart, %d reset", done, n, resets)
	if done != n {
		t.Errorf("%d connections lost", n-done)
	}
}
