package lvs_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/lvs/lvstest"
)

var (
	vip   = lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr("192.168.12.211"), Port: 80}
	rs1   = lvs.RealServerKey{Addr: netip.MustParseAddr("192.168.28.103"), Port: 80}
	rs2   = lvs.RealServerKey{Addr: netip.MustParseAddr("192.168.28.104"), Port: 80}
	rs3   = lvs.RealServerKey{Addr: netip.MustParseAddr("192.168.28.105"), Port: 80}
	sorry = lvs.RealServerKey{Addr: netip.MustParseAddr("192.168.28.200"), Port: 8080}
)

func ptr[T any](v T) *T { return &v }

// recorder collects quorum notifications as "up 3" / "down 0".
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) opts() lvs.ManagerOptions {
	return lvs.ManagerOptions{
		OnQuorum: func(ev lvs.QuorumEvent) {
			r.mu.Lock()
			defer r.mu.Unlock()
			s := "down"
			if ev.Up {
				s = "up"
			}
			if ev.Shutdown {
				s = "shutdown-" + s
			}
			r.events = append(r.events, fmt.Sprintf("%s %d", s, ev.LiveWeight))
		},
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

// dests renders a service's destinations as "addr:port/weight".
func dests(t *testing.T, b *lvstest.Backend, key lvs.ServiceKey) []string {
	t.Helper()
	svcs, ok := b.Last()
	if !ok {
		t.Fatal("backend never applied")
	}
	for _, s := range svcs {
		if s.Key == key {
			out := []string{}
			for _, d := range s.Dests {
				out = append(out, fmt.Sprintf("%s/%d", netip.AddrPortFrom(d.Addr, d.Port), d.Weight))
			}
			return out
		}
	}
	t.Fatalf("service %s not applied", key)
	return nil
}

type step struct {
	name string
	// exactly one of health / weight is used
	rs     lvs.RealServerKey
	up     *bool
	weight *int
	// expectations after the step
	dests   []string
	events  []string
	applied bool
}

func down(rs lvs.RealServerKey, dests []string, events []string, applied bool) step {
	return step{name: "down " + rs.String(), rs: rs, up: ptr(false), dests: dests, events: events, applied: applied}
}

func up(rs lvs.RealServerKey, dests []string, events []string, applied bool) step {
	return step{name: "up " + rs.String(), rs: rs, up: ptr(true), dests: dests, events: events, applied: applied}
}

func weight(rs lvs.RealServerKey, w int, dests []string, events []string, applied bool) step {
	return step{name: fmt.Sprintf("weight %s=%d", rs, w), rs: rs, weight: &w, dests: dests, events: events, applied: applied}
}

func TestManagerTransitions(t *testing.T) {
	reals := func(ws ...int) []lvs.RealServer {
		keys := []lvs.RealServerKey{rs1, rs2, rs3}
		out := []lvs.RealServer{}
		for i, w := range ws {
			out = append(out, lvs.RealServer{Addr: keys[i].Addr, Weight: w})
		}
		return out
	}
	tests := []struct {
		name         string
		vs           lvs.VirtualServer
		initial      []string
		initialEvent []string
		steps        []step
	}{
		{
			name:    "seed: down removes, up restores",
			vs:      lvs.VirtualServer{Key: vip, Scheduler: "wrr", Method: "DR", RealServers: reals(1, 1)},
			initial: []string{"192.168.28.103:80/1", "192.168.28.104:80/1"},
			steps: []step{
				down(rs1, []string{"192.168.28.104:80/1"}, nil, true),
				down(rs1, []string{"192.168.28.104:80/1"}, nil, false),
				up(rs1, []string{"192.168.28.103:80/1", "192.168.28.104:80/1"}, nil, true),
				down(rs1, []string{"192.168.28.104:80/1"}, nil, true),
				down(rs2, []string{}, []string{"down 0"}, true),
				up(rs2, []string{"192.168.28.104:80/1"}, []string{"up 1"}, true),
			},
		},
		{
			name:    "inhibit_on_failure keeps weight 0",
			vs:      lvs.VirtualServer{Key: vip, InhibitOnFailure: true, RealServers: reals(2, 3)},
			initial: []string{"192.168.28.103:80/2", "192.168.28.104:80/3"},
			steps: []step{
				down(rs1, []string{"192.168.28.103:80/0", "192.168.28.104:80/3"}, nil, true),
				down(rs2, []string{"192.168.28.103:80/0", "192.168.28.104:80/0"}, []string{"down 0"}, true),
				up(rs2, []string{"192.168.28.103:80/0", "192.168.28.104:80/3"}, []string{"up 3"}, true),
			},
		},
		{
			name: "per-RS inhibit overrides the VS",
			vs: lvs.VirtualServer{Key: vip, InhibitOnFailure: true, RealServers: []lvs.RealServer{
				{Addr: rs1.Addr, Weight: 1, InhibitOnFailure: ptr(false)},
				{Addr: rs2.Addr, Weight: 1},
			}},
			initial: []string{"192.168.28.103:80/1", "192.168.28.104:80/1"},
			steps: []step{
				down(rs1, []string{"192.168.28.104:80/1"}, nil, true),
				down(rs2, []string{"192.168.28.104:80/0"}, []string{"down 0"}, true),
			},
		},
		{
			name: "quorum lost switches to sorry server and back",
			vs: lvs.VirtualServer{Key: vip, Quorum: 2, RealServers: reals(1, 1, 1),
				Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port}},
			initial: []string{"192.168.28.103:80/1", "192.168.28.104:80/1", "192.168.28.105:80/1"},
			steps: []step{
				down(rs1, []string{"192.168.28.104:80/1", "192.168.28.105:80/1"}, nil, true),
				down(rs2, []string{"192.168.28.200:8080/1"}, []string{"down 1"}, true),
				up(rs1, []string{"192.168.28.103:80/1", "192.168.28.105:80/1"}, []string{"up 2"}, true),
			},
		},
		{
			name: "hysteresis dampens flaps",
			vs: lvs.VirtualServer{Key: vip, Quorum: 2, Hysteresis: 1, RealServers: reals(1, 1, 1),
				Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port, Weight: 5}},
			initial: []string{"192.168.28.103:80/1", "192.168.28.104:80/1", "192.168.28.105:80/1"},
			steps: []step{
				// live 2, then 1: not below quorum-hysteresis = 1, keep the pool.
				down(rs1, []string{"192.168.28.104:80/1", "192.168.28.105:80/1"}, nil, true),
				down(rs2, []string{"192.168.28.105:80/1"}, nil, true),
				// live 0: lost.
				down(rs3, []string{"192.168.28.200:8080/5"}, []string{"down 0"}, true),
				// live 1, 2: below quorum+hysteresis = 3, sorry stays; nothing to apply.
				up(rs1, []string{"192.168.28.200:8080/5"}, nil, false),
				up(rs2, []string{"192.168.28.200:8080/5"}, nil, false),
				// live 3: regained.
				up(rs3, []string{"192.168.28.103:80/1", "192.168.28.104:80/1", "192.168.28.105:80/1"}, []string{"up 3"}, true),
			},
		},
		{
			name:    "no sorry server: pool kept below quorum",
			vs:      lvs.VirtualServer{Key: vip, Quorum: 3, RealServers: reals(1, 1, 1)},
			initial: []string{"192.168.28.103:80/1", "192.168.28.104:80/1", "192.168.28.105:80/1"},
			steps: []step{
				down(rs1, []string{"192.168.28.104:80/1", "192.168.28.105:80/1"}, []string{"down 2"}, true),
				up(rs1, []string{"192.168.28.103:80/1", "192.168.28.104:80/1", "192.168.28.105:80/1"}, []string{"up 3"}, true),
			},
		},
		{
			name: "sorry_server_inhibit keeps the sorry server at weight 0",
			vs: lvs.VirtualServer{Key: vip, RealServers: reals(1),
				Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port, Inhibit: true}},
			initial: []string{"192.168.28.103:80/1", "192.168.28.200:8080/0"},
			steps: []step{
				down(rs1, []string{"192.168.28.200:8080/1"}, []string{"down 0"}, true),
				up(rs1, []string{"192.168.28.103:80/1", "192.168.28.200:8080/0"}, []string{"up 1"}, true),
			},
		},
		{
			name: "inhibited down servers stay listed while sorry is in use",
			vs: lvs.VirtualServer{Key: vip, Quorum: 2, InhibitOnFailure: true, RealServers: reals(1, 1),
				Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port}},
			initial: []string{"192.168.28.103:80/1", "192.168.28.104:80/1"},
			steps: []step{
				// rs2 is live but displaced; rs1 is down and inhibited.
				down(rs1, []string{"192.168.28.103:80/0", "192.168.28.200:8080/1"}, []string{"down 1"}, true),
			},
		},
		{
			name:    "misc_dynamic weight changes the pool and quorum",
			vs:      lvs.VirtualServer{Key: vip, Quorum: 3, RealServers: reals(2, 2), Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port}},
			initial: []string{"192.168.28.103:80/2", "192.168.28.104:80/2"},
			steps: []step{
				weight(rs1, 7, []string{"192.168.28.103:80/7", "192.168.28.104:80/2"}, nil, true),
				weight(rs1, 7, []string{"192.168.28.103:80/7", "192.168.28.104:80/2"}, nil, false),
				down(rs1, []string{"192.168.28.200:8080/1"}, []string{"down 2"}, true),
				// Weight of a down server changes nothing live.
				weight(rs1, 0, []string{"192.168.28.200:8080/1"}, nil, false),
				weight(rs2, 3, []string{"192.168.28.104:80/3"}, []string{"up 3"}, true),
				up(rs1, []string{"192.168.28.103:80/0", "192.168.28.104:80/3"}, nil, true),
			},
		},
		{
			name:         "alpha starts down",
			vs:           lvs.VirtualServer{Key: vip, Alpha: true, RealServers: reals(1, 1), Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port}},
			initial:      []string{"192.168.28.200:8080/1"},
			initialEvent: []string{"down 0"},
			steps: []step{
				up(rs2, []string{"192.168.28.104:80/1"}, []string{"up 1"}, true),
			},
		},
		{
			name: "per-RS alpha",
			vs: lvs.VirtualServer{Key: vip, RealServers: []lvs.RealServer{
				{Addr: rs1.Addr, Weight: 1, Alpha: ptr(true)}, {Addr: rs2.Addr, Weight: 1},
			}},
			initial: []string{"192.168.28.104:80/1"},
			steps: []step{
				up(rs1, []string{"192.168.28.103:80/1", "192.168.28.104:80/1"}, nil, true),
			},
		},
		{
			name:    "weight 0 server up counts nothing",
			vs:      lvs.VirtualServer{Key: vip, RealServers: reals(0, 1)},
			initial: []string{"192.168.28.103:80/0", "192.168.28.104:80/1"},
			steps: []step{
				down(rs2, []string{"192.168.28.103:80/0"}, []string{"down 0"}, true),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &lvstest.Backend{}
			rec := &recorder{}
			m := lvs.NewManager(b, rec.opts())
			if err := m.Configure([]lvs.VirtualServer{tt.vs}); err != nil {
				t.Fatal(err)
			}
			if b.Applies() != 1 {
				t.Fatalf("Configure: %d applies, want 1", b.Applies())
			}
			if got := dests(t, b, vip); !slices.Equal(got, tt.initial) {
				t.Fatalf("initial dests = %v, want %v", got, tt.initial)
			}
			if got := rec.take(); !slices.Equal(got, tt.initialEvent) {
				t.Fatalf("initial events = %v, want %v", got, tt.initialEvent)
			}
			for i, s := range tt.steps {
				before := b.Applies()
				var err error
				if s.up != nil {
					err = m.SetHealth(vip, s.rs, *s.up)
				} else {
					err = m.SetWeight(vip, s.rs, *s.weight)
				}
				if err != nil {
					t.Fatalf("step %d %s: %v", i, s.name, err)
				}
				if got := b.Applies() - before; got != map[bool]int{false: 0, true: 1}[s.applied] {
					t.Errorf("step %d %s: %d applies, want applied=%v", i, s.name, got, s.applied)
				}
				if got := dests(t, b, vip); !slices.Equal(got, s.dests) {
					t.Errorf("step %d %s: dests = %v, want %v", i, s.name, got, s.dests)
				}
				if got := rec.take(); !slices.Equal(got, s.events) {
					t.Errorf("step %d %s: events = %v, want %v", i, s.name, got, s.events)
				}
			}
		})
	}
}

func TestManagerServiceFields(t *testing.T) {
	b := &lvstest.Backend{}
	m := lvs.NewManager(b, lvs.ManagerOptions{})
	err := m.Configure([]lvs.VirtualServer{{
		Key: vip, Scheduler: "wrr", Method: "dr", PersistenceTimeout: 50 * time.Second, PersistenceGranularity: 24,
		RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}, {Addr: rs2.Addr, Port: 8080, Weight: 1, Method: "TUN"}},
	}, {
		Key:         lvs.ServiceKey{Fwmark: 7, Family: 4},
		RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := b.Last()
	want := []lvs.Service{{
		Key: vip, Scheduler: "wrr", PersistenceTimeout: 50 * time.Second, PersistenceGranularity: 24,
		Dests: []lvs.Dest{{Addr: rs1.Addr, Port: 80, Weight: 1, Method: "DR"}, {Addr: rs2.Addr, Port: 8080, Weight: 1, Method: "TUN"}},
	}, {
		// Fwmark services sort after address services (ipvsadm order),
		// default to wlc and NAT, and keep port 0.
		Key: lvs.ServiceKey{Fwmark: 7, Family: 4}, Scheduler: "wlc",
		Dests: []lvs.Dest{{Addr: rs1.Addr, Port: 0, Weight: 1, Method: "NAT"}},
	}}
	if fmt.Sprint(svcs) != fmt.Sprint(want) {
		t.Fatalf("applied\n%v\nwant\n%v", svcs, want)
	}
}

func TestManagerConfigureErrors(t *testing.T) {
	good := func() lvs.VirtualServer {
		return lvs.VirtualServer{Key: vip, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}}}
	}
	tests := []struct {
		name   string
		mutate func(*lvs.VirtualServer)
		want   string
	}{
		{"no address", func(v *lvs.VirtualServer) { v.Key.Addr = netip.Addr{} }, "no address"},
		{"bad protocol", func(v *lvs.VirtualServer) { v.Key.Proto = 1 }, "protocol 1"},
		{"fwmark with address", func(v *lvs.VirtualServer) { v.Key.Fwmark = 3 }, "fwmark service with an address"},
		{"bad method", func(v *lvs.VirtualServer) { v.Method = "FULLNAT" }, `forwarding method "FULLNAT"`},
		{"bad rs method", func(v *lvs.VirtualServer) { v.RealServers[0].Method = "x" }, "real server 192.168.28.103:80"},
		{"negative weight", func(v *lvs.VirtualServer) { v.RealServers[0].Weight = -1 }, "weight -1"},
		{"negative quorum", func(v *lvs.VirtualServer) { v.Quorum = -2 }, "quorum -2"},
		{"negative hysteresis", func(v *lvs.VirtualServer) { v.Hysteresis = -1 }, "hysteresis -1"},
		{"duplicate rs", func(v *lvs.VirtualServer) {
			v.RealServers = append(v.RealServers, lvs.RealServer{Addr: rs1.Addr, Port: 80})
		}, "configured twice"},
		{"rs without address", func(v *lvs.VirtualServer) { v.RealServers[0].Addr = netip.Addr{} }, "without an address"},
		{"sorry is a real server", func(v *lvs.VirtualServer) { v.Sorry = &lvs.SorryServer{Addr: rs1.Addr} }, "also a real server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &lvstest.Backend{}
			m := lvs.NewManager(b, lvs.ManagerOptions{})
			if err := m.Configure([]lvs.VirtualServer{good()}); err != nil {
				t.Fatal(err)
			}
			vs := good()
			tt.mutate(&vs)
			err := m.Configure([]lvs.VirtualServer{vs})
			if !errors.Is(err, lvs.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig containing %q", err, tt.want)
			}
			if b.Applies() != 1 || len(m.Services()) != 1 || len(m.Services()[0].Dests) != 1 {
				t.Fatalf("invalid config changed state: %d applies, %v", b.Applies(), m.Services())
			}
		})
	}
	t.Run("duplicate service", func(t *testing.T) {
		m := lvs.NewManager(&lvstest.Backend{}, lvs.ManagerOptions{})
		err := m.Configure([]lvs.VirtualServer{good(), good()})
		if !errors.Is(err, lvs.ErrInvalidConfig) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestManagerUnknownTargets(t *testing.T) {
	m := lvs.NewManager(&lvstest.Backend{}, lvs.ManagerOptions{})
	if err := m.Configure([]lvs.VirtualServer{{Key: vip, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}}}}); err != nil {
		t.Fatal(err)
	}
	other := vip
	other.Port = 443
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unknown service", m.SetHealth(other, rs1, false), lvs.ErrUnknownService},
		{"unknown real server", m.SetHealth(vip, rs2, false), lvs.ErrUnknownRealServer},
		{"unknown real server weight", m.SetWeight(vip, rs2, 1), lvs.ErrUnknownRealServer},
		{"negative weight", m.SetWeight(vip, rs1, -1), lvs.ErrInvalidWeight},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
}

func TestManagerReloadKeepsHealth(t *testing.T) {
	b := &lvstest.Backend{}
	rec := &recorder{}
	m := lvs.NewManager(b, rec.opts())
	cfg := lvs.VirtualServer{Key: vip, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}, {Addr: rs2.Addr, Weight: 1}}}
	if err := m.Configure([]lvs.VirtualServer{cfg}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetHealth(vip, rs1, false); err != nil {
		t.Fatal(err)
	}
	if err := m.SetWeight(vip, rs2, 4); err != nil {
		t.Fatal(err)
	}
	n := b.Applies()
	// Same config again: nothing to apply.
	if err := m.Configure([]lvs.VirtualServer{cfg}); err != nil {
		t.Fatal(err)
	}
	if b.Applies() != n {
		t.Fatalf("reload of the same config applied")
	}
	// Add rs3 (starts up), keep rs1 down and rs2's dynamic weight.
	cfg.RealServers = append(cfg.RealServers, lvs.RealServer{Addr: rs3.Addr, Weight: 2})
	if err := m.Configure([]lvs.VirtualServer{cfg}); err != nil {
		t.Fatal(err)
	}
	want := []string{"192.168.28.104:80/4", "192.168.28.105:80/2"}
	if got := dests(t, b, vip); !slices.Equal(got, want) {
		t.Fatalf("after reload dests = %v, want %v", got, want)
	}
	// Removing the service applies an empty state.
	if err := m.Configure(nil); err != nil {
		t.Fatal(err)
	}
	if svcs, _ := b.Last(); len(svcs) != 0 {
		t.Fatalf("after removing every service applied %v", svcs)
	}
	if ev := rec.take(); len(ev) != 0 {
		t.Fatalf("events %v", ev)
	}
}

func TestManagerBatchUpdate(t *testing.T) {
	b := &lvstest.Backend{}
	rec := &recorder{}
	m := lvs.NewManager(b, rec.opts())
	reals := []lvs.RealServer{}
	for i := range 1000 {
		reals = append(reals, lvs.RealServer{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Weight: 1})
	}
	if err := m.Configure([]lvs.VirtualServer{{Key: vip, Quorum: 10, RealServers: reals,
		Sorry: &lvs.SorryServer{Addr: sorry.Addr, Port: sorry.Port}}}); err != nil {
		t.Fatal(err)
	}
	n := b.Applies()
	// All down and all up again in one batch: quorum judged once on the
	// result (no flap), and nothing changed, so no Apply.
	err := m.Update(func(tx *lvs.Tx) error {
		for _, r := range reals {
			if err := tx.SetHealth(vip, lvs.RealServerKey{Addr: r.Addr, Port: 80}, false); err != nil {
				return err
			}
		}
		for _, r := range reals {
			if err := tx.SetHealth(vip, lvs.RealServerKey{Addr: r.Addr, Port: 80}, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.Applies() != n || len(rec.take()) != 0 {
		t.Fatalf("no-op batch applied %d times", b.Applies()-n)
	}
	// 995 down in one batch: one Apply, one quorum-down event.
	err = m.Update(func(tx *lvs.Tx) error {
		for _, r := range reals[:995] {
			if err := tx.SetHealth(vip, lvs.RealServerKey{Addr: r.Addr, Port: 80}, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.Applies() != n+1 {
		t.Fatalf("batch applied %d times, want 1", b.Applies()-n)
	}
	if got := rec.take(); !slices.Equal(got, []string{"down 5"}) {
		t.Fatalf("events = %v", got)
	}
	if got := dests(t, b, vip); !slices.Equal(got, []string{"192.168.28.200:8080/1"}) {
		t.Fatalf("dests = %v", got)
	}
	// An error inside the batch is returned; earlier changes are kept.
	boom := errors.New("boom")
	err = m.Update(func(tx *lvs.Tx) error {
		for _, r := range reals[:10] {
			_ = tx.SetHealth(vip, lvs.RealServerKey{Addr: r.Addr, Port: 80}, true)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if got := rec.take(); !slices.Equal(got, []string{"up 15"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestManagerApplyFailureRetries(t *testing.T) {
	b := &lvstest.Backend{}
	m := lvs.NewManager(b, lvs.ManagerOptions{})
	fail := errors.New("map full")
	b.SetErr(fail)
	cfg := []lvs.VirtualServer{{Key: vip, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}, {Addr: rs2.Addr, Weight: 1}}}}
	if err := m.Configure(cfg); !errors.Is(err, fail) {
		t.Fatalf("err = %v, want %v", err, fail)
	}
	b.SetErr(nil)
	// A change that does not alter the desired state still retries the
	// failed Apply.
	if err := m.SetHealth(vip, rs1, true); err != nil {
		t.Fatal(err)
	}
	if b.Applies() != 2 {
		t.Fatalf("%d applies, want a retry", b.Applies())
	}
	if err := m.SetHealth(vip, rs1, true); err != nil || b.Applies() != 2 {
		t.Fatalf("applied again after success: %d, %v", b.Applies(), err)
	}
}

func TestManagerShutdownOmega(t *testing.T) {
	b := &lvstest.Backend{}
	rec := &recorder{}
	m := lvs.NewManager(b, rec.opts())
	other := vip
	other.Port = 443
	err := m.Configure([]lvs.VirtualServer{
		{Key: vip, Omega: true, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}, {Addr: rs2.Addr, Weight: 1}}},
		{Key: other, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetHealth(vip, rs2, false); err != nil {
		t.Fatal(err)
	}
	n := b.Applies()
	m.Shutdown()
	want := []string{"shutdown-down 1"}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if b.Applies() != n {
		t.Fatal("Shutdown touched the backend")
	}
}

// TestManagerConcurrent drives the Manager from many goroutines; run with
// -race. The final state must reflect the last write of each real server.
func TestManagerConcurrent(t *testing.T) {
	b := &lvstest.Backend{}
	rec := &recorder{}
	m := lvs.NewManager(b, rec.opts())
	var reals []lvs.RealServer
	for i := range 64 {
		reals = append(reals, lvs.RealServer{Addr: netip.AddrFrom4([4]byte{10, 2, 0, byte(i)}), Weight: 1})
	}
	if err := m.Configure([]lvs.VirtualServer{{Key: vip, RealServers: reals}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				r := reals[(g*8+i)%len(reals)]
				if g%2 == 0 {
					_ = m.SetHealth(vip, lvs.RealServerKey{Addr: r.Addr, Port: 80}, i%3 != 0)
				} else {
					_ = m.SetWeight(vip, lvs.RealServerKey{Addr: r.Addr, Port: 80}, i%5)
				}
				_ = m.Services()
			}
		})
	}
	wg.Wait()
	// Bring everything to a known state and check it.
	err := m.Update(func(tx *lvs.Tx) error {
		for _, r := range reals {
			k := lvs.RealServerKey{Addr: r.Addr, Port: 80}
			if err := tx.SetHealth(vip, k, true); err != nil {
				return err
			}
			if err := tx.SetWeight(vip, k, 2); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := b.Last()
	if len(svcs[0].Dests) != 64 {
		t.Fatalf("%d dests, want 64", len(svcs[0].Dests))
	}
	for _, d := range svcs[0].Dests {
		if d.Weight != 2 {
			t.Fatalf("dest %v weight %d, want 2", d.Addr, d.Weight)
		}
	}
}

// TestManagerReloadAppliesWeightAfterDownUp: a real server that went down
// and came back (the daemon reports an up event's weight with SetWeight)
// still takes a new configured weight on reload; only a weight a checker
// set away from the configured one (misc_dynamic) survives a reload.
func TestManagerReloadAppliesWeightAfterDownUp(t *testing.T) {
	b := &lvstest.Backend{}
	m := lvs.NewManager(b, lvs.ManagerOptions{})
	cfg := lvs.VirtualServer{Key: vip, RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}, {Addr: rs2.Addr, Weight: 1}}}
	if err := m.Configure([]lvs.VirtualServer{cfg}); err != nil {
		t.Fatal(err)
	}
	// What the daemon does for a health checker's down and up events.
	for _, up := range []bool{false, true} {
		if err := m.SetHealth(vip, rs1, up); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetWeight(vip, rs1, 1); err != nil {
		t.Fatal(err)
	}
	// A misc_dynamic checker moved rs2's weight.
	if err := m.SetWeight(vip, rs2, 7); err != nil {
		t.Fatal(err)
	}
	cfg.RealServers = []lvs.RealServer{{Addr: rs1.Addr, Weight: 5}, {Addr: rs2.Addr, Weight: 3}}
	if err := m.Configure([]lvs.VirtualServer{cfg}); err != nil {
		t.Fatal(err)
	}
	want := []string{"192.168.28.103:80/5", "192.168.28.104:80/7"}
	if got := dests(t, b, vip); !slices.Equal(got, want) {
		t.Fatalf("after reload dests = %v, want %v (rs1 takes its new configured weight, rs2 keeps its dynamic one)", got, want)
	}
}
