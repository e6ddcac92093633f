package flowsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

// DefaultPort is the UDP port flow sync uses.
const DefaultPort = 9166

// Table is a node's flow table (a *dataplane.Dataplane).
type Table interface {
	Flows(max int) ([]dataplane.Flow, error)
	PinFlows([]dataplane.Flow) (int, error)
}

// Config configures a Syncer.
type Config struct {
	Table Table
	// Peers are the other nodes; datagrams from anyone else are dropped
	// (and counted): a flow-sync datagram steers traffic.
	Peers []netip.Addr
	// Port is the UDP port listened on and sent to (DefaultPort if 0).
	Port int
	// Interval between sends of the flows that are new (200 ms if 0);
	// every Refresh (5 s if 0) all flows are sent again, for a peer that
	// restarted.
	Interval, Refresh time.Duration
	// MaxFlows bounds one read of the flow table (1<<20 if 0).
	MaxFlows int
	Logger   *slog.Logger
}

// Stats are a Syncer's counters.
type Stats struct {
	Sent, Received, Pinned, Dropped uint64
}

// Syncer sends this node's flows to its peers and pins theirs here.
type Syncer struct {
	cfg    Config
	conn   *net.UDPConn
	peers  map[netip.Addr]bool
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent, received, pinned, dropped atomic.Uint64
}

// flowID is a flow and its real server, as the sender remembers it.
type flowID struct {
	client, vip netip.AddrPort
	proto       uint8
	real        netip.AddrPort
}

// Start opens the socket and starts sending and receiving.
func Start(cfg Config) (*Syncer, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Interval == 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 5 * time.Second
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: cfg.Port})
	if err != nil {
		return nil, fmt.Errorf("flowsync: %w", err)
	}
	s := &Syncer{cfg: cfg, conn: conn, peers: map[netip.Addr]bool{}}
	for _, p := range cfg.Peers {
		s.peers[p.Unmap()] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.receive() }()
	go func() { defer s.wg.Done(); s.send(ctx) }()
	return s, nil
}

// Stop ends the Syncer.
func (s *Syncer) Stop() {
	s.cancel()
	s.conn.Close()
	s.wg.Wait()
}

// Stats returns the counters.
func (s *Syncer) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Received: s.received.Load(), Pinned: s.pinned.Load(), Dropped: s.dropped.Load()}
}

func (s *Syncer) receive() {
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !s.peers[from.Addr().Unmap()] {
			s.dropped.Add(1)
			continue
		}
		flows, err := Unmarshal(buf[:n])
		if err != nil {
			s.dropped.Add(1)
			s.cfg.Logger.Debug("flow sync: bad datagram", "from", from, "err", err)
			continue
		}
		s.received.Add(uint64(len(flows)))
		added, err := s.cfg.Table.PinFlows(flows)
		s.pinned.Add(uint64(added))
		if err != nil {
			s.cfg.Logger.Warn("flow sync: pinning flows failed", "from", from, "err", err)
		}
	}
}

func (s *Syncer) send(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	known := map[flowID]bool{}
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		flows, err := s.cfg.Table.Flows(s.cfg.MaxFlows)
		if err != nil {
			s.cfg.Logger.Warn("flow sync: reading the flow table failed", "err", err)
			continue
		}
		full := time.Since(last) >= s.cfg.Refresh
		if full {
			last = time.Now()
		}
		now := make(map[flowID]bool, len(flows))
		var out []dataplane.Flow
		for _, f := range flows {
			id := flowID{f.Client, f.VIP, f.Proto, f.Real}
			now[id] = true
			if full || !known[id] {
				out = append(out, f)
			}
		}
		known = now
		for len(out) > 0 {
			b, used := Marshal(out)
			out = out[used:]
			for p := range s.peers {
				if _, err := s.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(p, uint16(s.cfg.Port))); err == nil {
					s.sent.Add(uint64(b[5]))
				}
			}
		}
	}
}
