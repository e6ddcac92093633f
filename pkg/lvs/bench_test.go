package lvs_test

import (
	"net/netip"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/lvs/lvstest"
)

// bigConfig is 50 virtual servers of 100 real servers (5000 in all).
func bigConfig() []lvs.VirtualServer {
	var vss []lvs.VirtualServer
	for v := range 50 {
		vs := lvs.VirtualServer{Key: lvs.ServiceKey{Proto: lvs.ProtoTCP, Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(v)}), Port: 80}, Method: "DR"}
		for r := range 100 {
			vs.RealServers = append(vs.RealServers, lvs.RealServer{Addr: netip.AddrFrom4([4]byte{10, 0, byte(v), byte(r)}), Weight: 1})
		}
		vss = append(vss, vs)
	}
	return vss
}

// BenchmarkSetHealth flips one real server of 5000 (one Apply each).
// Compare with BenchmarkConfigureFull, the cost of recomputing the whole
// state, which a non-incremental model would pay per health change.
func BenchmarkSetHealth(b *testing.B) {
	vss := bigConfig()
	m := lvs.NewManager(&lvstest.Discard{}, lvs.ManagerOptions{})
	if err := m.Configure(vss); err != nil {
		b.Fatal(err)
	}
	key := vss[25].Key
	rs := lvs.RealServerKey{Addr: vss[25].RealServers[50].Addr, Port: 80}
	up := false
	b.ReportAllocs()
	for b.Loop() {
		if err := m.SetHealth(key, rs, up); err != nil {
			b.Fatal(err)
		}
		up = !up
	}
}

func BenchmarkConfigureFull(b *testing.B) {
	vss := bigConfig()
	b.ReportAllocs()
	for b.Loop() {
		m := lvs.NewManager(&lvstest.Discard{}, lvs.ManagerOptions{})
		if err := m.Configure(vss); err != nil {
			b.Fatal(err)
		}
	}
}
