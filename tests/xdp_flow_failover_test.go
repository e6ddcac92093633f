package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// A long TCP connection through the VIP outlives the MASTER load
// balancer. lvs2 has never seen the connection: its flow table is empty.
// It forwards the connection's next packets to the same real server only
// because it builds the same Maglev table from the same configuration and
// health, and the 5-tuple hashes into the same slot.
//
// keepalived + IPVS cannot do this without a sync daemon (lvs_sync_daemon
// / `ipvsadm --start-daemon master|backup`): IPVS's connection table lives
// on the MASTER only, and with the default net.ipv4.vs.sloppy_tcp=0 the new
// MASTER's IPVS creates no connection for a packet that is not a SYN, so
// the established connection's packets go nowhere (IPVS does not schedule
// them) and it stalls until the client gives up or a reset comes back.
// This test does not run IPVS (the kernel here has none); the contrast is
// the design's, see issue 4.

// flowPort is the echo service's port on the VIP and the real servers.
const flowPort = 7100

// flowEcho is a line echo server on a real server: every line "N" from a
// client is answered "HOST N". It remembers which sources connected, so
// the test can tell the client's one connection from the health checks'.
type flowEcho struct {
	host *testnet.Host
	ln   net.Listener
	mu   sync.Mutex
	// accepted counts connections by source address.
	accepted map[netip.Addr]int
}

// startFlowEcho listens on 0.0.0.0:flowPort in h's namespace (the VIP on lo
// included) until the test ends.
func startFlowEcho(t testing.TB, h *testnet.Host) *flowEcho {
	t.Helper()
	e := &flowEcho{host: h, accepted: map[netip.Addr]int{}}
	mustInNS(t, h, func() error {
		var err error
		e.ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", flowPort))
		return err
	})
	t.Cleanup(func() { e.ln.Close() })
	go e.serve()
	return e
}

func (e *flowEcho) serve() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			e.mu.Lock()
			e.accepted[ap.Addr().Unmap()]++
			e.mu.Unlock()
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, e.host.Name()+" "+line); err != nil {
					return
				}
			}
		}()
	}
}

// Accepted is how many connections came from src.
func (e *flowEcho) Accepted(src netip.Addr) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.accepted[src]
}

// flowExchange is one request/answer on the long connection.
type flowExchange struct {
	seq      int
	sent     time.Time
	answered time.Time
	server   string
}

// flowStream keeps one TCP connection from the client to VIP:flowPort and
// sends a numbered line every interval, reading each answer before the
// next line. It ends at the first error (a reset, EOF or a wrong answer)
// or when stopped.
type flowStream struct {
	conn net.Conn
	mu   sync.Mutex
	log  []flowExchange
	err  error
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startFlowStream(t testing.TB, client *testnet.Host, vip netip.Addr, interval time.Duration) *flowStream {
	t.Helper()
	s := &flowStream{stop: make(chan struct{}), done: make(chan struct{})}
	mustInNS(t, client, func() error {
		var err error
		s.conn, err = net.DialTimeout("tcp4", netip.AddrPortFrom(vip, flowPort).String(), 2*time.Second)
		return err
	})
	t.Cleanup(s.Stop)
	go s.run(interval)
	return s
}

// flowReadTimeout bounds one answer: far longer than the failover, so
// the only way the stream ends early is a real error on the connection.
const flowReadTimeout = 30 * time.Second

func (s *flowStream) run(interval time.Duration) {
	defer close(s.done)
	defer s.conn.Close()
	r := bufio.NewReader(s.conn)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		ex := flowExchange{seq: seq, sent: time.Now()}
		err := func() error {
			if _, err := fmt.Fprintf(s.conn, "%d\n", seq); err != nil {
				return fmt.Errorf("write #%d: %w", seq, err)
			}
			_ = s.conn.SetReadDeadline(time.Now().Add(flowReadTimeout))
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("read answer #%d: %w", seq, err)
			}
			name, n, ok := strings.Cut(strings.TrimSpace(line), " ")
			if !ok || n != strconv.Itoa(seq) {
				return fmt.Errorf("answer #%d is %q", seq, line)
			}
			ex.answered, ex.server = time.Now(), name
			return nil
		}()
		s.mu.Lock()
		if err != nil {
			s.err = err
		} else {
			s.log = append(s.log, ex)
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// Stop ends the stream (closing the connection) and waits for it.
func (s *flowStream) Stop() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// Snapshot returns the exchanges so far and the error that ended the
// stream, if any.
func (s *flowStream) Snapshot() ([]flowExchange, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]flowExchange(nil), s.log...), s.err
}

// WaitAnsweredAfter waits until n exchanges were answered after t0; it
// fails the test at once if the stream ended with an error.
func (s *flowStream) WaitAnsweredAfter(t testing.TB, t0 time.Time, n int, timeout time.Duration) {
	t.Helper()
	testnet.Eventually(t, timeout, func() error {
		log, err := s.Snapshot()
		if err != nil {
			t.Fatalf("the long connection broke: %v (after %d exchanges)", err, len(log))
		}
		got := 0
		for _, ex := range log {
			if ex.answered.After(t0) {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d exchanges answered since %v", got, n, t0.Format("15:04:05.000"))
		}
		return nil
	})
}

// flowVS is a virtual server for the echo service over rs1 and rs2 with a
// fast TCP_CHECK, in the lab's keepalived syntax.
func flowVS() string {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server %s %d {\n    delay_loop 1\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n", labVIP, flowPort)
	for _, rs := range []string{labRS1, labRS2} {
		fmt.Fprintf(&b, `    real_server %s %d {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
            connect_port %d
        }
    }
`, strings.Split(rs, "/")[0], flowPort, flowPort)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestXDPFlowSurvivesMasterCrash: a client keeps one TCP connection to
// VIP:7100 and exchanges a line with the real server every 50 ms. lvs1
// (MASTER) crashes: SIGKILL and its cable cut. lvs2 takes over and the
// same connection carries on with the same real server: no reset, no
// EOF, one connection accepted from the client in all, and lvs2's XDP
// program counted the connection's packets for that real server.
func TestXDPFlowSurvivesMasterCrash(t *testing.T) {
	const (
		interval = 50 * time.Millisecond
		// before/after are how many exchanges must be answered before
		// the crash and after lvs2 took over (2 s of traffic each).
		before = 40
		after  = 40
		// takeoverBound is lvs2's master-down interval at advert_int 1
		// (3 s + skew) plus drillMargin.
		takeoverBound = 3*time.Second + 1*time.Second + drillMargin
		// resumeBound is how long after the crash the connection may
		// stall: the takeover, the client's ARP entry moving to lvs2
		// with the GARP, and TCP's retransmission back-off (200 ms
		// doubling: a retransmission goes out at about 0.2, 0.6, 1.4,
		// 3.0, 6.2 and 12.6 s after the first lost segment).
		resumeBound = 15 * time.Second
	)
	l := newLVSLab(t)
	echo := map[string]*flowEcho{
		"rs1": startFlowEcho(t, l.RS1),
		"rs2": startFlowEcho(t, l.RS2),
	}
	n1, n2 := l.StartLBs(flowVS())
	// Both load balancers must see both real servers up, or their Maglev
	// tables differ and the test would prove nothing.
	testnet.Eventually(t, 15*time.Second, func() error {
		for _, n := range []*Node{n1, n2} {
			for _, rs := range []string{labRS1, labRS2} {
				d, err := flowDest(n, rs)
				if err != nil {
					return err
				}
				if !d.Up {
					return fmt.Errorf("%s: %s is %s", n.Host.Name(), rs, d.State)
				}
			}
		}
		return nil
	})

	stream := startFlowStream(t, l.Client, l.VIP, interval)
	stream.WaitAnsweredAfter(t, time.Time{}, before, 15*time.Second)
	log, _ := stream.Snapshot()
	server := log[0].server
	if server != "rs1" && server != "rs2" {
		t.Fatalf("the connection is served by %q", server)
	}
	rs, other := labRS1, labRS2
	if server == "rs2" {
		rs, other = labRS2, labRS1
	}
	// The connection went through lvs1's XDP program.
	d1, err := flowDest(n1, rs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("connection served by %s; lvs1's counters for it before the crash: %d packets, %d new flows", server, d1.InPkts, d1.Conns)
	if d1.InPkts < before {
		t.Errorf("lvs1 forwarded %d packets to %s, want at least the %d exchanges before the crash", d1.InPkts, server, before)
	}

	t0 := time.Now()
	n1.Stop(syscall.SIGKILL)
	l.Net.SetLink(l.LVS1, false)
	n2.WaitState("VI_1", "MASTER", takeoverBound)
	master := time.Since(t0)
	tm := time.Now()
	stream.WaitAnsweredAfter(t, tm, after, resumeBound)
	stream.Stop()
	log, err = stream.Snapshot()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the long connection broke: %v", err)
	}

	// The longest silence on the connection, and the first answer after
	// the crash.
	var gap time.Duration
	var gapFrom time.Time
	var firstAfter time.Time
	for i, ex := range log {
		if ex.server != server {
			t.Errorf("exchange #%d answered by %s, the connection started on %s", ex.seq, ex.server, server)
		}
		if i > 0 {
			if d := ex.answered.Sub(log[i-1].answered); d > gap {
				gap, gapFrom = d, log[i-1].answered
			}
		}
		if firstAfter.IsZero() && ex.sent.After(t0) {
			firstAfter = ex.answered
		}
	}
	if firstAfter.IsZero() {
		t.Fatal("no exchange started after the crash")
	}
	answeredAfter := 0
	for _, ex := range log {
		if ex.answered.After(tm) {
			answeredAfter++
		}
	}
	t.Logf("lvs2 MASTER %v after the crash; the connection answered again %v after the crash; longest silence %v (from %v after the crash); %d exchanges in all, %d after the takeover",
		master, firstAfter.Sub(t0), gap, gapFrom.Sub(t0), len(log), answeredAfter)
	if gap > resumeBound {
		t.Errorf("the connection was silent for %v, want at most %v", gap, resumeBound)
	}

	// One connection from the client in all: nothing reconnected.
	client := l.Client.Addr(4)
	total := 0
	for name, e := range echo {
		n := e.Accepted(client)
		total += n
		if name != server && n != 0 {
			t.Errorf("%s accepted %d connections from the client, want 0", name, n)
		}
	}
	if total != 1 {
		t.Errorf("the real servers accepted %d connections from the client, want 1", total)
	}

	// lvs2 forwarded the connection's packets after the takeover: the
	// real server's counters there cover at least one packet per
	// exchange after it.
	d2, err := flowDest(n2, rs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lvs2's counters for %s: %d packets, %d new flows", server, d2.InPkts, d2.Conns)
	if d2.InPkts < uint64(answeredAfter) {
		t.Errorf("lvs2 forwarded %d packets to %s, want at least the %d exchanges after the takeover", d2.InPkts, server, answeredAfter)
	}
	d, err := flowDest(n2, other)
	if err != nil {
		t.Fatal(err)
	}
	if d.InPkts != 0 {
		t.Errorf("lvs2 forwarded %d packets to %s, which has no connection", d.InPkts, other)
	}
}

// flowDest finds real server rs of the echo virtual server in `xdpvip lvs
// --json` on node.
func flowDest(node *Node, rs string) (lvs.DestView, error) {
	l, err := cliLVS(node)
	if err != nil {
		return lvs.DestView{}, err
	}
	addr := strings.Split(rs, "/")[0]
	for _, s := range l.Services {
		if s.Addr.String() != labVIP || s.Port != flowPort {
			continue
		}
		for _, d := range s.Dests {
			if d.Addr.String() == addr {
				return d, nil
			}
		}
	}
	return lvs.DestView{}, fmt.Errorf("%s: real server %s of %s:%d not listed", node.Host.Name(), addr, labVIP, flowPort)
}
