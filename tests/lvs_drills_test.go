package tests

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// The seed chapter's two failure drills, through the daemon and the XDP
// dataplane: a real server stops (docker stop nginx), and the MASTER load
// balancer stops (service keepalived stop), gracefully or by crash.

// drillChecks are the TCP_CHECK figures of labTCPReal.
const (
	drillDelayLoop      = 1 * time.Second
	drillRetry          = 1
	drillConnectTimeout = 1 * time.Second
	// drillMargin absorbs scheduling on a loaded 2-core machine and the
	// listing poll.
	drillMargin = 2 * time.Second
)

// drillDetectBound is the bound on noticing a dead real server:
// delay_loop × (retry + 1) + connect_timeout.
func drillDetectBound() time.Duration {
	return drillDelayLoop*time.Duration(drillRetry+1) + drillConnectTimeout
}

// TestLVSDrillRealServerDown is drill 1: nginx stops on rs1; within the
// detection bound `xdpvip lvs --json` lists it down on both load
// balancers and every new request is answered by rs2; nginx starts again
// and rs1 rejoins the pool.
func TestLVSDrillRealServerDown(t *testing.T) {
	l := newLVSLab(t)
	ng1 := l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	n1, n2 := l.StartLBs(labVS(0, "", labTCPReal(labRS1, 1, ""), labTCPReal(labRS2, 1, "")))
	for _, n := range []*Node{n1, n2} {
		waitCLIDest(t, n, labRS1, true, 10*time.Second)
		waitCLIDest(t, n, labRS2, true, 10*time.Second)
	}
	got, errs := labSplit(l.Client, l.VIP, 100)
	if len(errs) > 0 || got["rs1"] == 0 || got["rs2"] == 0 {
		t.Fatalf("before the drill: 100 requests answered %v, errors %v; want both real servers and no errors", got, errs)
	}
	t.Logf("before the drill: %v", got)

	t0 := time.Now()
	ng1.Stop()
	d := waitCLIDest(t, n1, labRS1, false, drillDetectBound()+drillMargin)
	detect := time.Since(t0)
	t.Logf("rs1 down after %v (bound delay_loop×(retry+1)+connect_timeout = %v): %+v", detect, drillDetectBound(), d)
	if d.State != "down" {
		t.Errorf("rs1 state %q, want down (no inhibit_on_failure)", d.State)
	}
	waitCLIDest(t, n2, labRS1, false, drillDetectBound()+drillMargin)

	got, errs = labSplit(l.Client, l.VIP, 200)
	if len(errs) > 0 || got["rs2"] != 200 {
		t.Fatalf("rs1 down: 200 requests answered %v, errors %v; want all by rs2", got, errs)
	}

	t1 := time.Now()
	ng1.Start()
	waitCLIDest(t, n1, labRS1, true, drillDetectBound()+drillMargin)
	t.Logf("rs1 up again after %v", time.Since(t1))
	got, errs = labSplit(l.Client, l.VIP, 200)
	if len(errs) > 0 || got["rs1"] == 0 || got["rs2"] == 0 || got["rs1"]+got["rs2"] != 200 {
		t.Fatalf("rs1 back: 200 requests answered %v, errors %v; want both real servers and no errors", got, errs)
	}
	t.Logf("after the drill: %v", got)
	if c := ng1.AccessCount(); c == 0 {
		t.Error("rs1's access log is empty after it rejoined")
	}
}

// TestLVSDrillPersistentRealServerDown is drill 1 with the seed's own
// persistence_timeout 50: the client is pinned to one real server; that
// server's nginx stops, and once it is listed down the client's requests
// are all answered by the other one. When the first comes back, the client
// stays where persistence put it (as with IPVS's persistence template).
func TestLVSDrillPersistentRealServerDown(t *testing.T) {
	l := newLVSLab(t)
	nginx := map[string]*labNginx{"rs1": l.StartNginx(l.RS1), "rs2": l.StartNginx(l.RS2)}
	addr := map[string]string{"rs1": labRS1, "rs2": labRS2}
	n1, _ := l.StartLBs(labVS(50, "", labTCPReal(labRS1, 1, ""), labTCPReal(labRS2, 1, "")))
	waitCLIDest(t, n1, labRS1, true, 10*time.Second)
	waitCLIDest(t, n1, labRS2, true, 10*time.Second)
	got, errs := labSplit(l.Client, l.VIP, 50)
	if len(errs) > 0 || len(got) != 1 {
		t.Fatalf("persistence 50: 50 requests answered %v, errors %v; want one real server", got, errs)
	}
	pinned, other := "rs1", "rs2"
	if got["rs2"] > 0 {
		pinned, other = "rs2", "rs1"
	}
	t.Logf("the client is pinned to %s", pinned)

	t0 := time.Now()
	nginx[pinned].Stop()
	waitCLIDest(t, n1, addr[pinned], false, drillDetectBound()+drillMargin)
	t.Logf("%s down after %v (bound %v)", pinned, time.Since(t0), drillDetectBound())
	got, errs = labSplit(l.Client, l.VIP, 100)
	if len(errs) > 0 || got[other] != 100 {
		t.Fatalf("%s down: 100 requests answered %v, errors %v; want all by %s", pinned, got, errs, other)
	}

	nginx[pinned].Start()
	waitCLIDest(t, n1, addr[pinned], true, drillDetectBound()+drillMargin)
	got, errs = labSplit(l.Client, l.VIP, 100)
	if len(errs) > 0 || got[other] != 100 {
		t.Errorf("%s back within the persistence timeout: 100 requests answered %v, errors %v; want all still by %s", pinned, got, errs, other)
	}
}

// TestLVSDrillMasterDown is drill 2: the MASTER load balancer stops
// (SIGTERM), or crashes (SIGKILL and its cable cut); the VIP moves to
// lvs2, the client's neighbour entry for the VIP shows lvs2's MAC (the
// seed's `arp -n` check) and requests keep being answered, with failures
// only while the switch happens.
func TestLVSDrillMasterDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(l *lvsLab, n *Node)
		// bound is how long the switch may take: the backup's skew time
		// after a priority-0 advert, or its master-down interval
		// (3 × advert_int + skew) after a crash.
		bound time.Duration
	}{
		{"graceful", func(_ *lvsLab, n *Node) { n.Stop(syscall.SIGTERM) }, skewFor(90)},
		{"crash", func(l *lvsLab, n *Node) {
			n.Stop(syscall.SIGKILL)
			l.Net.SetLink(l.LVS1, false)
		}, 3*time.Second + skewFor(90)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLVSLab(t)
			l.StartNginx(l.RS1)
			l.StartNginx(l.RS2)
			n1, n2 := l.StartLBs(labVS(0, "", labTCPReal(labRS1, 1, ""), labTCPReal(labRS2, 1, "")))
			for _, n := range []*Node{n1, n2} {
				waitCLIDest(t, n, labRS1, true, 10*time.Second)
				waitCLIDest(t, n, labRS2, true, 10*time.Second)
			}
			waitServedBy(t, l.Client, l.VIP, []string{"rs1", "rs2"}, 20, 10*time.Second)
			nb, err := l.Client.Neigh(l.VIP)
			if err != nil || !bytes.Equal(nb.MAC, l.LVS1.MAC()) {
				t.Fatalf("client's neighbour entry for the VIP before the drill: %v %v, want lvs1's MAC %s", nb, err, l.LVS1.MAC())
			}

			load := startLabLoad(l.Client, l.VIP, 500*time.Millisecond)
			t.Cleanup(load.Stop)
			load.WaitAnswered(t, 20, 10*time.Second)

			t0 := time.Now()
			tc.stop(l, n1)
			n2.WaitState("VI_1", "MASTER", tc.bound+drillMargin)
			master := time.Since(t0)
			testnet.Eventually(t, tc.bound+drillMargin, func() error {
				nb, err := l.Client.Neigh(l.VIP)
				if err != nil {
					return err
				}
				if !bytes.Equal(nb.MAC, l.LVS2.MAC()) {
					return fmt.Errorf("client: %s, want lvs2's MAC %s", nb, l.LVS2.MAC())
				}
				return nil
			})
			arp := time.Since(t0)
			// Every request started from now on must be answered.
			after := time.Now()
			load.WaitAnsweredSince(t, after, 50, 15*time.Second)
			load.Stop()
			res := load.Results()

			var failed, failedAfter, answeredAfter int
			var lastOK time.Time
			for _, r := range res {
				switch {
				case r.err != nil && r.start.Before(after):
					failed++
				case r.err != nil:
					failedAfter++
					t.Errorf("request at +%v failed after the switch: %v", r.start.Sub(t0), r.err)
				case !r.start.Before(after):
					answeredAfter++
					if r.body != "rs1" && r.body != "rs2" {
						t.Errorf("request answered by %q", r.body)
					}
				}
				if r.err == nil && r.start.Before(t0) {
					lastOK = r.start
				}
			}
			// Requests time out after 500 ms and the switch takes at most
			// bound: more failures than fit in that window mean requests
			// failed for another reason.
			maxFailed := int((tc.bound+drillMargin)/(500*time.Millisecond)) + 2
			t.Logf("lvs2 MASTER after %v, client's ARP entry on lvs2 after %v (bound %v); %d requests, %d failed during the switch (at most %d allowed), %d answered after it, last answer before the stop %v earlier",
				master, arp, tc.bound, len(res), failed, maxFailed, answeredAfter, t0.Sub(lastOK))
			if failed > maxFailed {
				t.Errorf("%d requests failed during the switch, want at most %d", failed, maxFailed)
			}
			if failedAfter > 0 {
				t.Errorf("%d requests failed after the switch", failedAfter)
			}
			if !HasAddr(t, l.LVS2, labVIP) {
				t.Error("VIP not on lvs2")
			}
			// lvs2's XDP program forwarded the requests after the switch.
			svc, err := labService(n2)
			if err != nil {
				t.Fatal(err)
			}
			if svc.Conns < uint64(answeredAfter) {
				t.Errorf("lvs2 counted %d connections, want at least the %d answered after the switch", svc.Conns, answeredAfter)
			}
		})
	}
}

// skewFor is RFC 5798's Skew_Time for a priority at advert_int 1 s.
func skewFor(prio int) time.Duration {
	return time.Duration(256-prio) * time.Second / 256
}

// labLoad sends requests from a client through the VIP one after another
// until stopped, and records each one.
type labLoad struct {
	mu      sync.Mutex
	results []labResult
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type labResult struct {
	start time.Time
	body  string
	err   error
}

func startLabLoad(h *testnet.Host, vip netip.Addr, timeout time.Duration) *labLoad {
	ld := &labLoad{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ld.done)
		for {
			select {
			case <-ld.stop:
				return
			default:
			}
			start := time.Now()
			body, err := labGet(h, vip, timeout)
			ld.mu.Lock()
			ld.results = append(ld.results, labResult{start: start, body: body, err: err})
			ld.mu.Unlock()
		}
	}()
	return ld
}

// Stop ends the load and waits for the last request.
func (ld *labLoad) Stop() {
	ld.once.Do(func() { close(ld.stop) })
	<-ld.done
}

// Results are the requests made so far, in order.
func (ld *labLoad) Results() []labResult {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return append([]labResult(nil), ld.results...)
}

// WaitAnswered waits until n requests have been answered.
func (ld *labLoad) WaitAnswered(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	ld.WaitAnsweredSince(t, time.Time{}, n, timeout)
}

// WaitAnsweredSince waits until n requests started at or after since
// have been answered.
func (ld *labLoad) WaitAnsweredSince(t testing.TB, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	testnet.Eventually(t, timeout, func() error {
		ok := 0
		var last error
		for _, r := range ld.Results() {
			if r.start.Before(since) {
				continue
			}
			if r.err != nil {
				last = r.err
				continue
			}
			ok++
		}
		if ok < n {
			return fmt.Errorf("%d of %d requests answered (last error %v)", ok, n, last)
		}
		return nil
	})
}

// TestLVSSeedListing: with the seed's virtual server (wrr, DR, TCP,
// persistence_timeout 50, two real servers of weight 1) `xdpvip lvs`
// prints the seed's `ipvsadm` listing for the lab's addresses, column for
// column; persistence keeps the client on one real server.
func TestLVSSeedListing(t *testing.T) {
	l := newLVSLab(t)
	l.StartNginx(l.RS1)
	l.StartNginx(l.RS2)
	n1, n2 := l.StartLBs(labVS(50, "", labTCPReal(labRS1, 1, ""), labTCPReal(labRS2, 1, "")))
	// The seed's listing with the lab's addresses, and -n's numeric ports
	// for ":http"; the columns are ipvsadm's (trailing blanks included).
	want := "Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"TCP  192.0.2.100:80 wrr persistent 50\n" +
		"  -> 192.0.2.21:80                Route   1      0          0         \n" +
		"  -> 192.0.2.22:80                Route   1      0          0         \n"
	for _, n := range []*Node{n1, n2} {
		waitCLIDest(t, n, labRS1, true, 10*time.Second)
		waitCLIDest(t, n, labRS2, true, 10*time.Second)
		out, err := n.CLI("lvs")
		if err != nil {
			t.Fatalf("%s: xdpvip lvs: %v\n%s", n.Host.Name(), err, out)
		}
		first, rest, _ := strings.Cut(out, "\n")
		if first != "xdpvip Virtual Server (dataplane xdp)" {
			t.Errorf("%s: first line %q", n.Host.Name(), first)
		}
		if rest != want {
			t.Errorf("%s: xdpvip lvs prints\n%s\nwant (after the first line)\n%s", n.Host.Name(), out, want)
		}
		svc, err := labService(n)
		if err != nil {
			t.Fatal(err)
		}
		if svc.Scheduler != "wrr" || svc.PersistenceTimeout != 50 || svc.Protocol != "TCP" {
			t.Errorf("%s: service %s persistence %d protocol %s, want wrr, 50, TCP", n.Host.Name(), svc.Scheduler, svc.PersistenceTimeout, svc.Protocol)
		}
	}

	// persistence_timeout keys on the client address: every connection
	// from the client lands on the same real server.
	got, errs := labSplit(l.Client, l.VIP, 100)
	if len(errs) > 0 || len(got) != 1 {
		t.Errorf("persistence 50: 100 requests from one client answered %v, errors %v; want one real server", got, errs)
	}
	svc, err := labService(n1)
	if err != nil {
		t.Fatal(err)
	}
	// Each connection is at least SYN, ACK + request and FIN through the
	// load balancer. (Conns counts persistence entries here, one per
	// client, where IPVS counts connections.)
	if svc.InPkts < 3*100 {
		t.Errorf("lvs1 counted %d packets in for 100 requests, want at least 300", svc.InPkts)
	}
	t.Logf("persistence 50: %v; lvs1 counted %d packets in, %d new flows", got, svc.InPkts, svc.Conns)
}
