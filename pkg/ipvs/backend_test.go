package ipvs

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	kipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// seedService is the seed chapter's virtual server: TCP 192.168.12.211:80,
// wrr, persistence 50 s, two DR real servers of weight 1.
func seedService() lvs.Service {
	return lvs.Service{
		Key:                lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr("192.168.12.211"), Port: 80},
		Scheduler:          "wrr",
		PersistenceTimeout: 50 * time.Second,
		Dests: []lvs.Dest{
			{Addr: netip.MustParseAddr("192.168.28.103"), Port: 80, Weight: 1, Method: "DR"},
			{Addr: netip.MustParseAddr("192.168.28.104"), Port: 80, Weight: 1, Method: "DR"},
		},
	}
}

func TestScheduler(t *testing.T) {
	for _, algo := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "mh", "sed", "nq", "fo", "ovf"} {
		got, err := Scheduler(algo)
		if err != nil || got != algo {
			t.Errorf("Scheduler(%q) = %q, %v; want %q", algo, got, err, algo)
		}
	}
	for _, bad := range []string{"", "random", "wrr "} {
		if _, err := Scheduler(bad); !errors.Is(err, ErrInvalidService) {
			t.Errorf("Scheduler(%q) error = %v; want ErrInvalidService", bad, err)
		}
	}
}

func TestToKernel(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name    string
		mutate  func(*lvs.Service)
		want    kipvs.Service
		wantFwd kipvs.ForwardType
		wantErr bool
	}{
		{
			name: "seed",
			want: kipvs.Service{Address: netip.MustParseAddr("192.168.12.211"), Port: 80, Protocol: kipvs.TCP, Family: kipvs.INET,
				Scheduler: "wrr", Flags: kipvs.ServicePersistent, Timeout: 50, Netmask: netmask.MaskFrom(32, 32)},
			wantFwd: kipvs.DirectRoute,
		},
		{
			name: "granularity /24, NAT, no persistence",
			mutate: func(s *lvs.Service) {
				s.PersistenceTimeout = 0
				s.PersistenceGranularity = 24
				s.Dests = []lvs.Dest{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080, Weight: 3, Method: "NAT"}}
			},
			want: kipvs.Service{Address: netip.MustParseAddr("192.168.12.211"), Port: 80, Protocol: kipvs.TCP, Family: kipvs.INET,
				Scheduler: "wrr", Netmask: netmask.MaskFrom4([4]byte{255, 255, 255, 0})},
			wantFwd: kipvs.Masquerade,
		},
		{
			name: "fractional timeout rounds up, TUN",
			mutate: func(s *lvs.Service) {
				s.PersistenceTimeout = 1500 * time.Millisecond
				s.Dests = []lvs.Dest{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Method: "tun"}}
			},
			want: kipvs.Service{Address: netip.MustParseAddr("192.168.12.211"), Port: 80, Protocol: kipvs.TCP, Family: kipvs.INET,
				Scheduler: "wrr", Flags: kipvs.ServicePersistent, Timeout: 2, Netmask: netmask.MaskFrom(32, 32)},
			wantFwd: kipvs.Tunnel,
		},
		{
			name: "IPv6 SCTP, default granularity /128",
			mutate: func(s *lvs.Service) {
				s.Key = lvs.ServiceKey{Proto: lvs.ProtoSCTP, Addr: v6, Port: 9}
				s.Scheduler = "mh"
				s.PersistenceTimeout = 0
				s.Dests = []lvs.Dest{{Addr: netip.MustParseAddr("2001:db8::2"), Port: 9, Weight: 1, Method: "DR"}}
			},
			want: kipvs.Service{Address: v6, Port: 9, Protocol: kipvs.SCTP, Family: kipvs.INET6,
				Scheduler: "mh", Netmask: netmask.MaskFrom(128, 128)},
			wantFwd: kipvs.DirectRoute,
		},
		{
			name: "fwmark keeps only mark and family",
			mutate: func(s *lvs.Service) {
				s.Key = lvs.ServiceKey{Fwmark: 5, Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr("1.2.3.4")}
				s.Scheduler = "sh"
				s.PersistenceTimeout = 0
				s.Dests = []lvs.Dest{{Addr: netip.MustParseAddr("10.0.0.1"), Weight: 1, Method: "DR"}}
			},
			want:    kipvs.Service{FWMark: 5, Family: kipvs.INET, Scheduler: "sh", Netmask: netmask.MaskFrom(32, 32)},
			wantFwd: kipvs.DirectRoute,
		},
		{name: "unknown lb_algo", mutate: func(s *lvs.Service) { s.Scheduler = "random" }, wantErr: true},
		{name: "ICMP", mutate: func(s *lvs.Service) { s.Key.Proto = 1 }, wantErr: true},
		{name: "no address", mutate: func(s *lvs.Service) { s.Key.Addr = netip.Addr{} }, wantErr: true},
		{name: "fwmark family 5", mutate: func(s *lvs.Service) { s.Key = lvs.ServiceKey{Fwmark: 1, Family: 5} }, wantErr: true},
		{name: "granularity /33", mutate: func(s *lvs.Service) { s.PersistenceGranularity = 33 }, wantErr: true},
		{name: "negative timeout", mutate: func(s *lvs.Service) { s.PersistenceTimeout = -time.Second }, wantErr: true},
		{name: "negative weight", mutate: func(s *lvs.Service) { s.Dests[0].Weight = -1 }, wantErr: true},
		{name: "unknown method", mutate: func(s *lvs.Service) { s.Dests[0].Method = "FULLNAT" }, wantErr: true},
		{name: "real server without address", mutate: func(s *lvs.Service) { s.Dests[0].Addr = netip.Addr{} }, wantErr: true},
		{name: "real server twice", mutate: func(s *lvs.Service) { s.Dests[1] = s.Dests[0] }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seedService()
			if tt.mutate != nil {
				tt.mutate(&s)
			}
			got, err := toKernel(s)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidService) {
					t.Fatalf("error = %v; want ErrInvalidService", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.svc != tt.want {
				t.Errorf("service = %+v\nwant      %+v", got.svc, tt.want)
			}
			for _, ap := range got.order {
				if d := got.dests[ap]; d.FwdMethod != tt.wantFwd {
					t.Errorf("real server %s method = %v; want %v", ap, d.FwdMethod, tt.wantFwd)
				}
			}
			if len(got.order) != len(s.Dests) {
				t.Errorf("%d real servers; want %d", len(got.order), len(s.Dests))
			}
		})
	}
}

// TestApplyByDifference steps one backend through a sequence of desired
// sets and checks the exact kernel calls each one makes.
func TestApplyByDifference(t *testing.T) {
	foreign := kipvs.Service{Address: netip.MustParseAddr("10.9.9.9"), Port: 8080, Protocol: kipvs.TCP, Family: kipvs.INET,
		Scheduler: "rr", Netmask: netmask.MaskFrom(32, 32)}
	k := &fakeKernel{}
	if err := k.CreateService(foreign); err != nil {
		t.Fatal(err)
	}
	k.calls = nil
	b := NewWithClient(k)

	weight := func(s lvs.Service, i, w int) lvs.Service {
		s.Dests = slices.Clone(s.Dests)
		s.Dests[i].Weight = w
		return s
	}
	udp := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: netip.MustParseAddr("192.168.12.211"), Port: 53}, Scheduler: "rr",
		Dests: []lvs.Dest{{Addr: netip.MustParseAddr("192.168.28.103"), Port: 53, Weight: 1, Method: "DR"}}}

	steps := []struct {
		name  string
		apply []lvs.Service
		calls []string
	}{
		{"create the seed service", []lvs.Service{seedService()}, []string{
			"CreateService 6/192.168.12.211:80",
			"CreateDestination 6/192.168.12.211:80 192.168.28.103:80 w1",
			"CreateDestination 6/192.168.12.211:80 192.168.28.104:80 w1",
		}},
		{"same set again changes nothing", []lvs.Service{seedService()}, nil},
		{"one weight changes one entry", []lvs.Service{weight(seedService(), 1, 5)}, []string{
			"UpdateDestination 6/192.168.12.211:80 192.168.28.104:80 w5",
		}},
		{"weight 0 for inhibit_on_failure", []lvs.Service{weight(seedService(), 0, 0)}, []string{
			"UpdateDestination 6/192.168.12.211:80 192.168.28.103:80 w0",
			"UpdateDestination 6/192.168.12.211:80 192.168.28.104:80 w1",
		}},
		{"a real server removed", []lvs.Service{func() lvs.Service { s := seedService(); s.Dests = s.Dests[1:]; return s }()}, []string{
			"RemoveDestination 6/192.168.12.211:80 192.168.28.103:80",
		}},
		{"scheduler change updates the service only", []lvs.Service{func() lvs.Service {
			s := seedService()
			s.Dests = s.Dests[1:]
			s.Scheduler = "wlc"
			return s
		}()}, []string{"UpdateService 6/192.168.12.211:80"}},
		{"second service added, first back as seed", []lvs.Service{seedService(), udp}, []string{
			"UpdateService 6/192.168.12.211:80",
			"CreateDestination 6/192.168.12.211:80 192.168.28.103:80 w1",
			"CreateService 17/192.168.12.211:53",
			"CreateDestination 17/192.168.12.211:53 192.168.28.103:53 w1",
		}},
		{"dropped service removed, foreign one kept", []lvs.Service{udp}, []string{"RemoveService 6/192.168.12.211:80"}},
		{"empty set removes what it owns", nil, []string{"RemoveService 17/192.168.12.211:53"}},
		{"empty again does nothing", nil, nil},
	}
	for _, st := range steps {
		k.calls = nil
		if err := b.Apply(st.apply); err != nil {
			t.Fatalf("%s: Apply: %v", st.name, err)
		}
		if !slices.Equal(k.calls, st.calls) {
			t.Errorf("%s: calls\n%q\nwant\n%q", st.name, k.calls, st.calls)
		}
		if k.find(foreign) == nil || len(k.find(foreign).dests) != 0 {
			t.Fatalf("%s: the foreign service was touched", st.name)
		}
	}
}

func TestApplyTakesOverNamedService(t *testing.T) {
	k := &fakeKernel{}
	want, err := toKernel(seedService())
	if err != nil {
		t.Fatal(err)
	}
	stale := want.svc
	stale.Scheduler = "rr"
	_ = k.CreateService(stale)
	_ = k.CreateDestination(stale, kipvs.Destination{Address: netip.MustParseAddr("192.168.28.200"), Port: 80, Family: kipvs.INET, Weight: 1})
	k.calls = nil
	b := NewWithClient(k)
	if err := b.Apply([]lvs.Service{seedService()}); err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{
		"UpdateService 6/192.168.12.211:80",
		"RemoveDestination 6/192.168.12.211:80 192.168.28.200:80",
		"CreateDestination 6/192.168.12.211:80 192.168.28.103:80 w1",
		"CreateDestination 6/192.168.12.211:80 192.168.28.104:80 w1",
	}
	if !slices.Equal(k.calls, wantCalls) {
		t.Errorf("calls\n%q\nwant\n%q", k.calls, wantCalls)
	}
}

func TestApplyLocalRealServerIsStable(t *testing.T) {
	k := &fakeKernel{local: map[netip.Addr]bool{netip.MustParseAddr("192.168.28.103"): true}}
	b := NewWithClient(k)
	for i := range 2 {
		k.calls = nil
		if err := b.Apply([]lvs.Service{seedService()}); err != nil {
			t.Fatal(err)
		}
		if i == 1 && len(k.calls) != 0 {
			t.Errorf("second Apply made calls %q; a Local real server must match its method", k.calls)
		}
	}
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	k := &fakeKernel{}
	b := NewWithClient(k)
	bad := seedService()
	bad.Scheduler = "nope"
	tests := []struct {
		name string
		set  []lvs.Service
	}{
		{"invalid service after a valid one", []lvs.Service{seedService(), bad}},
		{"same key twice", []lvs.Service{seedService(), seedService()}},
	}
	for _, tt := range tests {
		err := b.Apply(tt.set)
		if !errors.Is(err, ErrInvalidService) {
			t.Errorf("%s: error = %v; want ErrInvalidService", tt.name, err)
		}
		if len(k.calls) != 0 {
			t.Errorf("%s: kernel calls %q; want none", tt.name, k.calls)
		}
	}
}

func TestStatsOnlyOwned(t *testing.T) {
	k := &fakeKernel{}
	foreign := kipvs.Service{Address: netip.MustParseAddr("10.9.9.9"), Port: 8080, Protocol: kipvs.TCP, Family: kipvs.INET, Scheduler: "rr"}
	_ = k.CreateService(foreign)
	b := NewWithClient(k)
	if err := b.Apply([]lvs.Service{seedService()}); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 {
		t.Fatalf("%d services; want 1 (the owned one): %+v", len(st), st)
	}
	s := st[0]
	if s.Key != (lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr("192.168.12.211"), Port: 80, Family: 4}) {
		t.Errorf("key = %+v", s.Key)
	}
	if s.Conns != 7 || s.PktsIn != 70 {
		t.Errorf("service counters = %+v; want conns 7, pkts in 70", s)
	}
	if len(s.Dests) != 2 || s.Dests[0].Addr != netip.MustParseAddr("192.168.28.103") {
		t.Fatalf("real servers = %+v", s.Dests)
	}
	for _, d := range s.Dests {
		if d.ActiveConn != 2 || d.InactConn != 3 || d.Conns != 5 || d.PktsIn != 50 || d.BytesIn != 500 {
			t.Errorf("real server counters = %+v", d)
		}
	}
}

func TestName(t *testing.T) {
	if n := NewWithClient(&fakeKernel{}).Name(); n != "ipvs" {
		t.Errorf("Name() = %q", n)
	}
}

// FuzzToKernel checks that any service either converts or fails with
// ErrInvalidService, never panics, and that a converted key (and real
// server, with its tunnel) reads back as itself.
func FuzzToKernel(f *testing.F) {
	f.Add(uint8(6), []byte{192, 168, 12, 211}, uint16(80), uint32(0), uint8(0), "wrr", int64(50e9), 0, []byte{192, 168, 28, 103}, 1, "DR", "", uint16(0), "")
	f.Add(uint8(0), []byte{}, uint16(0), uint32(3), uint8(6), "sh", int64(0), 64, []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0, "TUN", "gue", uint16(6080), "remcsum")
	f.Add(uint8(17), []byte{10, 0, 0, 1}, uint16(53), uint32(0), uint8(0), "rr", int64(0), 0, []byte{10, 0, 0, 2}, 3, "tun", "GRE", uint16(0), "csum")
	f.Fuzz(func(t *testing.T, proto uint8, addr []byte, port uint16, mark uint32, fam uint8, algo string, timeout int64, gran int, daddr []byte, w int, method, tunType string, tunPort uint16, csum string) {
		a, _ := netip.AddrFromSlice(addr)
		d, _ := netip.AddrFromSlice(daddr)
		s := lvs.Service{
			Key:                    lvs.ServiceKey{Proto: proto, Addr: a, Port: port, Fwmark: mark, Family: fam},
			Scheduler:              algo,
			PersistenceTimeout:     time.Duration(timeout),
			PersistenceGranularity: gran,
			Dests:                  []lvs.Dest{{Addr: d, Port: port, Weight: w, Method: method, Tunnel: lvs.Tunnel{Type: tunType, Port: tunPort, Csum: csum}}},
		}
		ks, err := toKernel(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidService) {
				t.Fatalf("error %v does not wrap ErrInvalidService", err)
			}
			return
		}
		if got := keyOf(ks.svc); got != ks.key {
			t.Fatalf("keyOf(toKernel(key)) = %+v; want %+v", got, ks.key)
		}
		if !ks.svc.Netmask.IsValid() {
			t.Fatalf("netmask missing: %+v", ks.svc)
		}
		kd := ks.dests[ks.order[0]]
		back := destFromKernel(kd)
		want := lvs.Dest{Addr: d.Unmap(), Port: port, Weight: w, Method: strings.ToUpper(method)}
		if want.Method == "" {
			want.Method = "NAT"
		}
		if want.Method == "TUN" {
			want.Tunnel, _ = lvs.NormalizeTunnel(s.Dests[0].Tunnel)
		}
		if back != want {
			t.Fatalf("real server %+v reads back as %+v; want %+v", kd, back, want)
		}
	})
}
