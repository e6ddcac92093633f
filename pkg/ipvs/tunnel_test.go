package ipvs

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	kipvs "github.com/cloudflare/ipvs"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// TestKernelTunnel: keepalived's tunnel words become the kernel's numbers
// (include/uapi/linux/ip_vs.h: IP_VS_CONN_F_TUNNEL_TYPE_IPIP 0, _GUE 1,
// _GRE 2; IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM 0, _CSUM 1, _REMCSUM 2).
func TestKernelTunnel(t *testing.T) {
	tests := []struct {
		in    lvs.Tunnel
		typ   kipvs.TunnelType
		port  uint16
		flags kipvs.TunnelFlags
		bad   bool
	}{
		{in: lvs.Tunnel{}, typ: 0, flags: 0},
		{in: lvs.Tunnel{Type: "ipip", Csum: "nocsum"}, typ: 0, flags: 0},
		{in: lvs.Tunnel{Type: "gue", Port: 6080}, typ: 1, port: 6080, flags: 0},
		{in: lvs.Tunnel{Type: "gue", Port: 6080, Csum: "csum"}, typ: 1, port: 6080, flags: 1},
		{in: lvs.Tunnel{Type: "GUE", Port: 1, Csum: "remcsum"}, typ: 1, port: 1, flags: 2},
		{in: lvs.Tunnel{Type: "gre"}, typ: 2, flags: 0},
		{in: lvs.Tunnel{Type: "gre", Csum: "csum"}, typ: 2, flags: 1},
		{in: lvs.Tunnel{Type: "gue"}, bad: true},
		{in: lvs.Tunnel{Type: "gre", Csum: "remcsum"}, bad: true},
		{in: lvs.Tunnel{Csum: "csum"}, bad: true},
		{in: lvs.Tunnel{Type: "vxlan"}, bad: true},
	}
	for _, tt := range tests {
		typ, port, flags, err := KernelTunnel(tt.in)
		switch {
		case tt.bad:
			if !errors.Is(err, ErrInvalidService) {
				t.Errorf("%+v: err %v, want ErrInvalidService", tt.in, err)
			}
		case err != nil || typ != tt.typ || port != tt.port || flags != tt.flags:
			t.Errorf("%+v: %d %d %d %v, want %d %d %d", tt.in, typ, port, flags, err, tt.typ, tt.port, tt.flags)
		}
	}
}

func TestToKernelDestTunnel(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	kd, err := toKernelDest(lvs.Dest{Addr: a, Port: 80, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6080, Csum: "remcsum"}})
	if err != nil || kd.FwdMethod != kipvs.Tunnel || kd.TunnelType != kipvs.GUE || kd.TunnelPort != 6080 || kd.TunnelFlags != kipvs.TunnelEncapRemoteChecksum {
		t.Errorf("TUN gue: %+v %v", kd, err)
	}
	// IPv6 real server of an IPv4 service: only TUN may mix families.
	kd, err = toKernelDest(lvs.Dest{Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre", Csum: "csum"}})
	if err != nil || kd.Family != kipvs.INET6 || kd.TunnelType != kipvs.GRE || kd.TunnelFlags != kipvs.TunnelEncapChecksum {
		t.Errorf("TUN gre over IPv6: %+v %v", kd, err)
	}
	// DR uses no tunnel: the zero one goes to the kernel whatever is set.
	kd, err = toKernelDest(lvs.Dest{Addr: a, Port: 80, Weight: 1, Method: "DR", Tunnel: lvs.Tunnel{Type: "gue", Port: 6080}})
	if err != nil || kd.TunnelType != kipvs.IPIP || kd.TunnelPort != 0 || kd.TunnelFlags != 0 {
		t.Errorf("DR: %+v %v", kd, err)
	}
	if _, err := toKernelDest(lvs.Dest{Addr: a, Port: 80, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue"}}); !errors.Is(err, ErrInvalidService) {
		t.Errorf("gue without port: err %v, want ErrInvalidService", err)
	}
}

// TestApplyTunnelChange: a change of the tunnel alone updates the real
// server, the same tunnel again changes nothing, and Destinations reads
// back what the Manager would hand over.
func TestApplyTunnelChange(t *testing.T) {
	k := &fakeKernel{}
	b := NewWithClient(k)
	key := lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.MustParseAddr("192.168.12.211"), Port: 80}
	rs := netip.MustParseAddr("192.168.28.103")
	rs6 := netip.MustParseAddr("2001:db8::5")
	svc := func(t1, t2 lvs.Tunnel) []lvs.Service {
		return []lvs.Service{{Key: key, Scheduler: "rr", Dests: []lvs.Dest{
			{Addr: rs, Port: 80, Weight: 1, Method: "TUN", Tunnel: t1},
			{Addr: rs6, Port: 80, Weight: 2, Method: "TUN", Tunnel: t2},
			{Addr: netip.MustParseAddr("192.168.28.104"), Port: 80, Weight: 1, Method: "DR"},
		}}}
	}
	gue := lvs.Tunnel{Type: "gue", Port: 6080}
	gre := lvs.Tunnel{Type: "gre", Csum: "csum"}
	steps := []struct {
		name   string
		t1, t2 lvs.Tunnel
		calls  []string
	}{
		{"create", lvs.Tunnel{}, gre, []string{
			"CreateService 6/192.168.12.211:80",
			"CreateDestination 6/192.168.12.211:80 192.168.28.103:80 w1",
			"CreateDestination 6/192.168.12.211:80 [2001:db8::5]:80 w2",
			"CreateDestination 6/192.168.12.211:80 192.168.28.104:80 w1",
		}},
		{"same again", lvs.Tunnel{}, gre, nil},
		{"ipip to gue", gue, gre, []string{"UpdateDestination 6/192.168.12.211:80 192.168.28.103:80 w1"}},
		{"gue port", lvs.Tunnel{Type: "gue", Port: 6081}, gre, []string{"UpdateDestination 6/192.168.12.211:80 192.168.28.103:80 w1"}},
		{"gue csum", lvs.Tunnel{Type: "gue", Port: 6081, Csum: "csum"}, gre, []string{"UpdateDestination 6/192.168.12.211:80 192.168.28.103:80 w1"}},
		{"gre csum off", lvs.Tunnel{Type: "gue", Port: 6081, Csum: "csum"}, lvs.Tunnel{Type: "gre"}, []string{"UpdateDestination 6/192.168.12.211:80 [2001:db8::5]:80 w2"}},
		{"the same spelled out", lvs.Tunnel{Type: "GUE", Port: 6081, Csum: "CSUM"}, lvs.Tunnel{Type: "gre", Csum: "nocsum"}, nil},
	}
	for _, s := range steps {
		k.calls = nil
		want := svc(s.t1, s.t2)
		if err := b.Apply(want); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !slices.Equal(k.calls, s.calls) {
			t.Errorf("%s: calls %q, want %q", s.name, k.calls, s.calls)
		}
		got, err := b.Destinations(key)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var exp []lvs.Dest
		for _, d := range want[0].Dests {
			if d.Method == "TUN" {
				d.Tunnel, _ = lvs.NormalizeTunnel(d.Tunnel)
			}
			exp = append(exp, d)
		}
		slices.SortFunc(exp, func(x, y lvs.Dest) int {
			return netip.AddrPortFrom(x.Addr, x.Port).Compare(netip.AddrPortFrom(y.Addr, y.Port))
		})
		if !slices.Equal(got, exp) {
			t.Errorf("%s: read back %v, want %v", s.name, got, exp)
		}
	}
	if _, err := b.Destinations(lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: rs, Port: 1}); err == nil {
		t.Error("Destinations of an unknown service: no error")
	}
}

func TestDestFromKernelUnknownTunnel(t *testing.T) {
	d := destFromKernel(kipvs.Destination{Address: netip.MustParseAddr("10.0.0.1"), Port: 80, FwdMethod: kipvs.Tunnel, TunnelType: 7, TunnelFlags: 0x10})
	if d.Method != "TUN" || d.Tunnel.Type != "type 7" || d.Tunnel.Csum != "flags 0x10" {
		t.Errorf("%+v", d)
	}
}
