package tests

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/internal/testnet"
)

// bgpStatus is a node's BGP status, failing the test without one.
func bgpStatus(t testing.TB, n *Node) *daemon.BGPStatus {
	t.Helper()
	st := n.Status()
	if st.BGP == nil {
		t.Fatalf("%s: status has no bgp part", n.Host.Name())
	}
	return st.BGP
}

// TestECMPThreeNextHopsAndSpread: three nodes announce the VIP, the router
// has three next hops, and 3000 flows with distinct source ports are all
// answered and spread evenly over the nodes.
func TestECMPThreeNextHopsAndSpread(t *testing.T) {
	l := newECMPLab(t, false)
	hops := l.NextHops()
	slices.Sort(hops)
	if want := []string{"10.78.1.11", "10.78.1.12", "10.78.1.13"}; !slices.Equal(hops, want) {
		t.Fatalf("next hops %v, want %v", hops, want)
	}
	for _, n := range l.Nodes {
		b := bgpStatus(t, n)
		if len(b.Sessions) != 1 || b.Sessions[0].State != "ESTABLISHED" || b.Sessions[0].HoldTime != 3 {
			t.Errorf("%s: sessions %+v", n.Host.Name(), b.Sessions)
		}
		if len(b.Routes) != 1 || !b.Routes[0].Announced || !b.Routes[0].Forwarded || b.Routes[0].Prefix != ecmpVIP+"/32" {
			t.Errorf("%s: routes %+v", n.Host.Name(), b.Routes)
		}
		if b.RouterID != n.Host.Addr(4).String() || b.Interface != "eth0" {
			t.Errorf("%s: defaults router_id %s interface %s", n.Host.Name(), b.RouterID, b.Interface)
		}
	}

	m, err := scrape(l.LBs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`xdpvip_bgp_route_announced{mode="ecmp",prefix="10.78.9.1/32"} 1`,
		`xdpvip_bgp_session_established{neighbor="10.78.1.1",remote_as="65000"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("lb1's /metrics lacks %s", want)
		}
	}
	gobgp := false // GoBGP's own collector
	for _, line := range strings.Split(m, "\n") {
		gobgp = gobgp || (strings.HasPrefix(line, "bgp_peer_state{") && strings.Contains(line, `peer="10.78.1.1"`))
	}
	if !gobgp {
		t.Errorf("lb1's /metrics has no bgp_peer_state for the router")
	}

	const flows, workers = 3000, 16
	before := l.conns()
	var (
		mu     sync.Mutex
		byRS   = map[string]int{}
		failed []error
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flows; i += workers {
				body, err := l.getFrom(30000+i, "/", 3*time.Second)
				mu.Lock()
				if err != nil {
					failed = append(failed, fmt.Errorf("port %d: %w", 30000+i, err))
				} else {
					byRS[body]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	after := l.conns()
	if len(failed) > 0 {
		t.Errorf("%d of %d flows not answered, first: %v", len(failed), flows, failed[0])
	}
	t.Logf("real servers: %v", byRS)
	third := float64(flows) / 3
	for i := range l.Nodes {
		got := after[i] - before[i]
		t.Logf("%s: %d flows (%.1f%% of a third)", l.LBs[i].Name(), got, 100*float64(got)/third)
		if float64(got) < 0.9*third || float64(got) > 1.1*third {
			t.Errorf("%s forwarded %d flows, want %d±10%%", l.LBs[i].Name(), got, int(third))
		}
	}

	// Route health injection: with both real servers down the virtual
	// server loses quorum on every node, and every node withdraws.
	stopped := time.Now()
	for _, p := range l.Nginx {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	l.WaitNextHops(0, 15*time.Second)
	t.Logf("quorum lost: the router has no route %v after stopping the real servers (delay_loop 1, retry 1)",
		time.Since(stopped).Round(time.Millisecond))
	for _, n := range l.Nodes {
		b := bgpStatus(t, n)
		if len(b.Routes) != 1 || b.Routes[0].Announced || b.Routes[0].Reason != "no quorum" || b.Routes[0].Forwarded {
			t.Errorf("%s: routes %+v", n.Host.Name(), b.Routes)
		}
	}
}

// TestECMPNodeFailureKeepsFlows: 300 long-lived downloads run while one
// node is SIGKILLed and its cable cut; the router drops its next hop
// within the hold time and the downloads go on through the other nodes,
// which pick the same real servers.
func TestECMPNodeFailureKeepsFlows(t *testing.T) {
	testNodeFailure(t, false, ecmpHold)
}

// TestECMPNodeFailureBFD is TestECMPNodeFailureKeepsFlows with BFD on the
// sessions: the route goes within BFD's detection time (300 ms × 3).
func TestECMPNodeFailureBFD(t *testing.T) {
	testNodeFailure(t, true, time.Second)
}

func testNodeFailure(t *testing.T, bfd bool, within time.Duration) {
	l := newECMPLab(t, bfd)
	if bfd {
		for _, n := range l.Nodes {
			testnet.Eventually(t, 10*time.Second, func() error {
				b := bgpStatus(t, n)
				if len(b.Sessions) != 1 || b.Sessions[0].BFD != "UP" {
					return fmt.Errorf("%s: BFD not up: %+v", n.Host.Name(), b.Sessions)
				}
				return nil
			})
		}
	}
	const n = 300
	dl := l.startDownloads(n, 40000)
	time.Sleep(time.Second)
	victim := l.Nodes[0]
	// The cable first: the dying daemon's sockets cannot say goodbye (a
	// FIN would end the session at once), so the router has only the hold
	// timer, as when a node loses power.
	killed := time.Now()
	l.Rack.SetLink(victim.Host, false)
	if err := victim.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took := l.WaitNextHops(ecmpNodes-1, 3*ecmpHold)
	t.Logf("route via %s withdrawn %v after link down + SIGKILL (hold time %v, BFD %v)", victim.Host.Name(),
		took.Round(time.Millisecond), ecmpHold, bfd)
	if took > within+500*time.Millisecond {
		t.Errorf("withdrawal took %v, want within %v", took, within)
	}
	if slices.Contains(l.NextHops(), "10.78.1.11") {
		t.Errorf("the dead node is still a next hop")
	}
	done, resets := dl.Wait()
	t.Logf("%d of %d long-lived connections survived (%.1f%%), %d reset, %v after the kill",
		done, n, 100*float64(done)/n, resets, time.Since(killed).Round(time.Second))
	if done < n*99/100 {
		t.Errorf("%d of %d connections survived, want at least 99%%", done, n)
	}
	if resets > 0 {
		t.Errorf("%d connections were reset", resets)
	}
}

// TestECMPDrainLosesNothing: `xdpvip drain` on one node withdraws its
// route while 300 downloads run; the router moves the flows to the other
// nodes, and stopping the drained node and cutting its cable afterwards
// loses none of them.
func TestECMPDrainLosesNothing(t *testing.T) {
	testDrain(t, false)
}

// TestECMPSigtermDrainsFirst: SIGTERM on a node with an announced ECMP
// route withdraws it and waits before leaving; cutting the node's cable
// once it has exited loses none of 300 downloads.
func TestECMPSigtermDrainsFirst(t *testing.T) {
	testDrain(t, true)
}

func testDrain(t *testing.T, sigterm bool) {
	l := newECMPLab(t, false)
	const n = 300
	dl := l.startDownloads(n, 40000)
	node := l.Nodes[2]
	start := time.Now()
	type result struct {
		out string
		err error
	}
	cli := make(chan result, 1)
	if sigterm {
		// The router's view is polled while the daemon waits to exit.
		go func() { node.Stop(syscall.SIGTERM); cli <- result{} }()
	} else {
		// The router's view is polled while `xdpvip drain --wait 1` waits.
		go func() {
			out, err := node.CLI("drain", "--wait", "1")
			cli <- result{out, err}
		}()
	}
	l.WaitNextHops(ecmpNodes-1, 5*time.Second)
	t.Logf("route via %s withdrawn by the router %v after the drain started (sigterm %v)", node.Host.Name(),
		time.Since(start).Round(time.Millisecond), sigterm)
	r := <-cli
	if sigterm {
		t.Logf("the daemon exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		if log := node.Proc.Log(); !strings.Contains(log, "draining: every route withdrawn") {
			t.Errorf("SIGTERM did not drain:\n%s", log)
		}
	} else {
		if r.err != nil {
			t.Fatalf("xdpvip drain: %v\n%s", r.err, r.out)
		}
		t.Logf("xdpvip drain:\n%s", r.out)
		for _, want := range []string{"withdrawn: 10.78.9.1/32", "waited 1s", "DRAINING", "draining"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("xdpvip drain's report lacks %q", want)
			}
		}
		b := bgpStatus(t, node)
		if !b.Draining || len(b.Routes) != 1 || b.Routes[0].Announced || b.Routes[0].Reason != "draining" || !b.Routes[0].Forwarded {
			t.Errorf("drained node's status: %+v", b)
		}
		// drain --undo brings the route back; drain again before leaving.
		if out, err := node.CLI("drain", "--undo"); err != nil {
			t.Fatalf("xdpvip drain --undo: %v\n%s", err, out)
		}
		t.Logf("route back %v after drain --undo", l.WaitNextHops(ecmpNodes, 5*time.Second).Round(time.Millisecond))
		if out, err := node.CLI("drain", "--wait", "0"); err != nil {
			t.Fatalf("xdpvip drain: %v\n%s", err, out)
		}
		l.WaitNextHops(ecmpNodes-1, 5*time.Second)
		// The router has moved the flows: the drained node can go.
		time.Sleep(time.Second)
		node.Stop(syscall.SIGTERM)
	}
	l.Rack.SetLink(node.Host, false)
	done, resets := dl.Wait()
	t.Logf("%d of %d long-lived connections survived the drain, %d reset", done, n, resets)
	if done != n {
		t.Errorf("drain lost %d connections", n-done)
	}
}

// TestECMPRealServerAddedDuringNodeLoss: a real server is added (SIGHUP)
// on the surviving nodes while a node dies. Flows the router moves from
// the dead node are scheduled afresh by a table that now has the new real
// server, so those Maglev gives to it are lost (xdpvip has no flow-state
// exchange between nodes yet); flows the survivors already carried stay
// pinned in their flow tables. The test reports the fraction kept.
func TestECMPRealServerAddedDuringNodeLoss(t *testing.T) {
	testRealServerAdded(t, false)
}

// TestECMPFlowSyncRealServerAddedDuringNodeLoss is the same with
// flow_sync_peer: the survivors learnt the dead node's flows from it and
// keep them on their real servers.
func TestECMPFlowSyncRealServerAddedDuringNodeLoss(t *testing.T) {
	testRealServerAdded(t, true)
}

func testRealServerAdded(t *testing.T, flowSync bool) {
	l := newECMPLabWith(t, false, flowSync)
	rs3 := l.addRealServer()
	l.startNginx(rs3)
	const n = 300
	dl := l.startDownloads(n, 40000)
	time.Sleep(time.Second)
	victim := l.Nodes[0]
	l.Rack.SetLink(victim.Host, false)
	if err := victim.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i, node := range l.Nodes[1:] {
		if err := os.WriteFile(node.Conf, []byte(ecmpConfReals(node.Host.Name(), i%2 == 0, false, 3, flowSync)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := node.Proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range l.Nodes[1:] {
		testnet.Eventually(t, 10*time.Second, func() error {
			for _, s := range node.LVS().Services {
				for _, d := range s.Dests {
					if d.Addr.String() == "10.78.1.23" && d.Up && d.Weight > 0 {
						return nil
					}
				}
			}
			return fmt.Errorf("%s: rs3 not in service yet", node.Host.Name())
		})
	}
	l.WaitNextHops(ecmpNodes-1, 3*ecmpHold)
	done, resets := dl.Wait()
	t.Logf("flow-state exchange %v: %d of %d connections kept (%.1f%%), %d reset, when rs3 joins as lb1 dies",
		flowSync, done, n, 100*float64(done)/n, resets)
	if flowSync {
		for _, node := range l.Nodes[1:] {
			t.Logf("%s: flow sync %+v", node.Host.Name(), bgpStatus(t, node).FlowSync)
		}
		if done < n*99/100 {
			t.Errorf("with flow-state exchange %d of %d kept, want at least 99%%", done, n)
		}
	}
	// At most the dead node's share (a third) can be rescheduled; the
	// survivors' own flows are pinned and must all be kept.
	if done < n*2/3-n/20 {
		t.Errorf("%d of %d kept: the survivors lost flows they carried", done, n)
	}
}
