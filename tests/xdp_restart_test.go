package tests

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestXDPDaemonRestartKeepsForwarding: the XDP program, its maps and the
// VIPs' forwarding state are pinned, so when the MASTER's daemon dies and
// is started again, VIP traffic keeps flowing: the kernel never sees it,
// and the new daemon adopts what the old one left while its election
// runs, then becomes MASTER again (no peer here). A graceful stop, by
// contrast, releases the VIP and stops forwarding.
func TestXDPDaemonRestartKeepsForwarding(t *testing.T) {
	l := newLVSLab(t)
	l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	vs := labVS(0, "", labTCPReal(labRS1, 1, ""), labTCPReal(labRS2, 1, ""))
	n1 := l.StartNode(l.LVS1, labConf("lvs1", "MASTER", 100, vs), "--dataplane", "xdp")
	n1.WaitState("VI_1", "MASTER", 10*time.Second)
	waitCLIDest(t, n1, labRS1, true, 10*time.Second)
	waitCLIDest(t, n1, labRS2, true, 10*time.Second)

	// Requests all along, one connection each.
	var (
		mu       sync.Mutex
		ok, bad  int
		firstErr error
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := labGet(l.Client, l.VIP, time.Second)
			mu.Lock()
			if err != nil {
				bad++
				if firstErr == nil {
					firstErr = err
				}
			} else {
				ok++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	counts := func() (int, int) { mu.Lock(); defer mu.Unlock(); return ok, bad }
	waitRequests := func(n int) {
		t.Helper()
		o0, _ := counts()
		testnet.Eventually(t, 10*time.Second, func() error {
			if o, _ := counts(); o < o0+n {
				return fmt.Errorf("%d requests answered, want %d more", o-o0, n)
			}
			return nil
		})
	}
	waitRequests(20)

	n1.Stop(syscall.SIGKILL)
	before, _ := counts()
	waitRequests(20) // answered with no daemon at all
	after, _ := counts()
	okDead := after - before
	t0 := time.Now()
	l.RestartNode(n1, "--dataplane", "xdp")
	n1.WaitState("VI_1", "MASTER", 10*time.Second)
	t.Logf("restarted daemon MASTER again %v after its start", time.Since(t0))
	if !HasAddr(t, l.LVS1, labVIP) {
		t.Error("the VIP is not on lvs1 after the restart")
	}
	waitRequests(20)
	close(stop)
	<-done
	o, b := counts()
	t.Logf("%d requests answered, %d failed; %d answered while no daemon ran", o, b, okDead)
	if b != 0 {
		t.Fatalf("%d requests failed across the daemon's crash and restart; first: %v", b, firstErr)
	}
	if o < 60 {
		t.Errorf("only %d requests answered", o)
	}

	// A graceful stop releases: the VIP goes and the kernel gets the
	// traffic again (nobody answers on port 80 there).
	n1.Stop(syscall.SIGTERM)
	if HasAddr(t, l.LVS1, labVIP) {
		t.Error("the VIP stayed on lvs1 after a graceful stop")
	}
	if _, err := labGet(l.Client, l.VIP, time.Second); err == nil {
		t.Error("a request through the VIP was answered after a graceful stop with no peer")
	}
}
