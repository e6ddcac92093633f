package lvs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/lvs/lvstest"
)

// rs4 is a DR real server beside TUN ones.
var rs4 = netip.MustParseAddr("192.168.28.106")

func TestNormalizeTunnel(t *testing.T) {
	tests := []struct {
		in      lvs.Tunnel
		want    lvs.Tunnel
		options string
		err     string
	}{
		{lvs.Tunnel{}, lvs.Tunnel{}, "type ipip", ""},
		{lvs.Tunnel{Type: "ipip", Csum: "nocsum"}, lvs.Tunnel{}, "type ipip", ""},
		{lvs.Tunnel{Type: "IPIP"}, lvs.Tunnel{}, "type ipip", ""},
		{lvs.Tunnel{Type: "gue", Port: 6080}, lvs.Tunnel{Type: "gue", Port: 6080}, "type gue port 6080 nocsum", ""},
		{lvs.Tunnel{Type: "GUE", Port: 1, Csum: "RemCsum"}, lvs.Tunnel{Type: "gue", Port: 1, Csum: "remcsum"}, "type gue port 1 remcsum", ""},
		{lvs.Tunnel{Type: "gue", Port: 65535, Csum: "csum"}, lvs.Tunnel{Type: "gue", Port: 65535, Csum: "csum"}, "type gue port 65535 csum", ""},
		{lvs.Tunnel{Type: "gre"}, lvs.Tunnel{Type: "gre"}, "type gre nocsum", ""},
		{lvs.Tunnel{Type: "gre", Csum: "csum"}, lvs.Tunnel{Type: "gre", Csum: "csum"}, "type gre csum", ""},
		{lvs.Tunnel{Type: "vxlan"}, lvs.Tunnel{}, "", `tunnel type "vxlan"`},
		{lvs.Tunnel{Csum: "crc"}, lvs.Tunnel{}, "", `checksum option "crc"`},
		{lvs.Tunnel{Type: "gue"}, lvs.Tunnel{}, "", "a gue tunnel needs a port"},
		{lvs.Tunnel{Port: 6080}, lvs.Tunnel{}, "", "only a gue tunnel has a port, not ipip"},
		{lvs.Tunnel{Type: "gre", Port: 6080}, lvs.Tunnel{}, "", "only a gue tunnel has a port, not gre"},
		{lvs.Tunnel{Csum: "csum"}, lvs.Tunnel{}, "", "ipip tunnel has no checksum option"},
		{lvs.Tunnel{Type: "gre", Csum: "remcsum"}, lvs.Tunnel{}, "", "gre tunnel has no remote checksum"},
	}
	for _, tt := range tests {
		got, err := lvs.NormalizeTunnel(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%+v: err %v, want one containing %q", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("%+v: %v", tt.in, err)
		case tt.err == "" && got != tt.want:
			t.Errorf("%+v: %+v, want %+v", tt.in, got, tt.want)
		case tt.err == "" && got.Options() != tt.options:
			t.Errorf("%+v: options %q, want %q", tt.in, got.Options(), tt.options)
		}
	}
}

// TestManagerTunnels: a TUN real server's Dest carries its tunnel (its own,
// or the virtual server's with its method), normalised; DR and NAT ones
// carry none; a tunnel change is a change of the destination.
func TestManagerTunnels(t *testing.T) {
	b := &lvstest.Backend{}
	m := lvs.NewManager(b, lvs.ManagerOptions{})
	gue := lvs.Tunnel{Type: "GUE", Port: 6080, Csum: "csum"}
	vs := lvs.VirtualServer{
		Key: vip, Method: "TUN", Tunnel: gue,
		RealServers: []lvs.RealServer{
			{Addr: rs1.Addr, Weight: 1},
			{Addr: rs2.Addr, Weight: 1, Method: "TUN"},
			{Addr: rs3.Addr, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre"}},
			{Addr: rs4, Weight: 1, Method: "DR", Tunnel: lvs.Tunnel{Type: "gue", Port: 1}},
		},
		Sorry: &lvs.SorryServer{Addr: sorry.Addr, Method: "tun", Tunnel: lvs.Tunnel{Type: "ipip", Csum: "nocsum"}, Inhibit: true},
	}
	if err := m.Configure([]lvs.VirtualServer{vs}); err != nil {
		t.Fatal(err)
	}
	wantGUE := lvs.Tunnel{Type: "gue", Port: 6080, Csum: "csum"}
	want := map[string]lvs.Dest{
		rs1.Addr.String():   {Addr: rs1.Addr, Port: 80, Weight: 1, Method: "TUN", Tunnel: wantGUE},
		rs2.Addr.String():   {Addr: rs2.Addr, Port: 80, Weight: 1, Method: "TUN"},
		rs3.Addr.String():   {Addr: rs3.Addr, Port: 80, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre"}},
		rs4.String():        {Addr: rs4, Port: 80, Weight: 1, Method: "DR"},
		sorry.Addr.String(): {Addr: sorry.Addr, Port: 80, Weight: 0, Method: "TUN"},
	}
	svcs, _ := b.Last()
	if len(svcs) != 1 || len(svcs[0].Dests) != len(want) {
		t.Fatalf("applied %v", svcs)
	}
	for _, d := range svcs[0].Dests {
		if w := want[d.Addr.String()]; d != w {
			t.Errorf("dest %v, want %v", d, w)
		}
	}
	// The listing shows the tunnel of TUN servers, defaults spelled out.
	var buf bytes.Buffer
	if err := lvs.WriteList(&buf, m.Views(nil), lvs.ListOptions{JSON: true}); err != nil {
		t.Fatal(err)
	}
	var doc lvs.ListJSON
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	tunnels := map[string]string{}
	for _, d := range doc.Services[0].Dests {
		s := "none"
		if d.Tunnel != nil {
			js, _ := json.Marshal(d.Tunnel)
			s = string(js)
		}
		tunnels[d.Addr.String()] = s
	}
	for addr, w := range map[string]string{
		rs1.Addr.String():   `{"type":"gue","port":6080,"csum":"csum"}`,
		rs2.Addr.String():   `{"type":"ipip","csum":"nocsum"}`,
		rs3.Addr.String():   `{"type":"gre","csum":"nocsum"}`,
		rs4.String():        "none",
		sorry.Addr.String(): `{"type":"ipip","csum":"nocsum"}`,
	} {
		if tunnels[addr] != w {
			t.Errorf("%s: tunnel %s, want %s", addr, tunnels[addr], w)
		}
	}
	if !strings.Contains(buf.String(), `"tunnel": {`) {
		t.Errorf("no tunnel in the JSON listing:\n%s", buf.String())
	}

	// Only the tunnel changes: the backend gets the new destination.
	n := b.Applies()
	vs.RealServers[0].Method, vs.RealServers[0].Tunnel = "TUN", lvs.Tunnel{Type: "gue", Port: 6081}
	if err := m.Configure([]lvs.VirtualServer{vs}); err != nil {
		t.Fatal(err)
	}
	svcs, _ = b.Last()
	i := slices.IndexFunc(svcs[0].Dests, func(d lvs.Dest) bool { return d.Addr == rs1.Addr })
	if b.Applies() != n+1 || i < 0 || svcs[0].Dests[i].Tunnel != (lvs.Tunnel{Type: "gue", Port: 6081}) {
		t.Errorf("after a tunnel change: %d applies (want %d), dests %v", b.Applies(), n+1, svcs[0].Dests)
	}
	// The same again (spelled differently): nothing to apply.
	vs.RealServers[0].Tunnel = lvs.Tunnel{Type: "GUE", Port: 6081, Csum: "nocsum"}
	if err := m.Configure([]lvs.VirtualServer{vs}); err != nil || b.Applies() != n+1 {
		t.Errorf("the same tunnel again: err %v, %d applies, want %d", err, b.Applies(), n+1)
	}
}

func TestManagerTunnelErrors(t *testing.T) {
	tests := []struct {
		name string
		vs   lvs.VirtualServer
		want string
	}{
		{"vs gue without port", lvs.VirtualServer{Key: vip, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue"},
			RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}}}, "gue tunnel needs a port"},
		{"rs unknown type", lvs.VirtualServer{Key: vip,
			RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "vxlan"}}}}, `real server 192.168.28.103:80: tunnel type "vxlan"`},
		{"rs tunnel without method", lvs.VirtualServer{Key: vip, Method: "TUN",
			RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1, Tunnel: lvs.Tunnel{Type: "gre"}}}}, "without a forwarding method"},
		{"sorry gre remcsum", lvs.VirtualServer{Key: vip, Method: "TUN",
			RealServers: []lvs.RealServer{{Addr: rs1.Addr, Weight: 1}},
			Sorry:       &lvs.SorryServer{Addr: sorry.Addr, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre", Csum: "remcsum"}}}, "sorry server: a gre tunnel"},
	}
	for _, tt := range tests {
		m := lvs.NewManager(&lvstest.Backend{}, lvs.ManagerOptions{})
		err := m.Configure([]lvs.VirtualServer{tt.vs})
		if !errors.Is(err, lvs.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig containing %q", tt.name, err, tt.want)
		}
	}
}

// FuzzNormalizeTunnel: any tunnel is refused or normalised to a fixed
// point that keepalived's rules accept.
func FuzzNormalizeTunnel(f *testing.F) {
	f.Add("gue", uint16(6080), "remcsum")
	f.Add("GRE", uint16(0), "csum")
	f.Add("", uint16(0), "")
	f.Add("ipip", uint16(1), "nocsum")
	f.Fuzz(func(t *testing.T, typ string, port uint16, csum string) {
		out, err := lvs.NormalizeTunnel(lvs.Tunnel{Type: typ, Port: port, Csum: csum})
		if err != nil {
			return
		}
		again, err := lvs.NormalizeTunnel(out)
		if err != nil || again != out {
			t.Fatalf("%+v normalised to %+v, again %+v %v", lvs.Tunnel{Type: typ, Port: port, Csum: csum}, out, again, err)
		}
		if (out.TypeName() == lvs.TunnelGUE) != (out.Port != 0) || out.TypeName() == lvs.TunnelIPIP && out.CsumName() != lvs.TunnelNoCsum ||
			out.TypeName() == lvs.TunnelGRE && out.CsumName() == lvs.TunnelRemCsum {
			t.Fatalf("accepted %+v", out)
		}
	})
}

// TestWriteListTunInfo: `xdpvip lvs --tun-info` prints the lines ipvsadm
// 1.31 prints for `ipvsadm -Ln --tun-info` over the same real servers
// (pkg/ipvs's TestVMTunnels reads them from a kernel in a qemu guest).
func TestWriteListTunInfo(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	vs := lvs.VirtualServer{
		Key: lvs.ServiceKey{Proto: lvs.ProtoUDP, Addr: a("10.1.0.9"), Port: 53}, Scheduler: "rr", Method: "TUN",
		RealServers: []lvs.RealServer{
			{Addr: a("10.2.0.1"), Weight: 1},
			{Addr: a("10.2.0.2"), Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6080}},
			{Addr: a("10.2.0.3"), Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6081, Csum: "csum"}},
			{Addr: a("10.2.0.4"), Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6082, Csum: "remcsum"}},
			{Addr: a("10.2.0.5"), Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre"}},
			{Addr: a("10.2.0.6"), Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gre", Csum: "csum"}},
			{Addr: a("10.2.0.7"), Weight: 1, Method: "DR"},
			{Addr: a("2001:db8::8"), Weight: 1, Method: "TUN", Tunnel: lvs.Tunnel{Type: "gue", Port: 6083}},
		},
	}
	m := lvs.NewManager(&lvstest.Backend{}, lvs.ManagerOptions{})
	if err := m.Configure([]lvs.VirtualServer{vs}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := lvs.WriteList(&buf, m.Views(nil), lvs.ListOptions{TunInfo: true}); err != nil {
		t.Fatal(err)
	}
	want := "xdpvip Virtual Server\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n" +
		"UDP  10.1.0.9:53 rr\n" +
		"  -> 10.2.0.1:53                  Tunnel  ipip          1      0          0         \n" +
		"  -> 10.2.0.2:53                  Tunnel  gue:6080:-c   1      0          0         \n" +
		"  -> 10.2.0.3:53                  Tunnel  gue:6081:+c   1      0          0         \n" +
		"  -> 10.2.0.4:53                  Tunnel  gue:6082:r+c  1      0          0         \n" +
		"  -> 10.2.0.5:53                  Tunnel  gre:-c        1      0          0         \n" +
		"  -> 10.2.0.6:53                  Tunnel  gre:+c        1      0          0         \n" +
		"  -> 10.2.0.7:53                  Route   n/a           1      0          0         \n" +
		"  -> [2001:db8::8]:53             Tunnel  gue:6083:-c   1      0          0         \n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
