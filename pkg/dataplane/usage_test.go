package dataplane

import (
	"net/netip"
	"testing"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// TestMapUsage: the occupancy the metrics report is what the maps hold:
// the services applied and one flow entry per forwarded client flow.
func TestMapUsage(t *testing.T) {
	d := newTestDataplane(t, 251, testResolver())
	if err := d.Apply([]lvs.Service{
		tcpService(svcVIP4, 80, dest(rs1, 80, 1)),
		tcpService(svcVIP4, 443, dest(rs1, 443, 1)),
		tcpService(svcVIP6, 443, dest(rs6, 443, 1)),
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(svcVIP4, true); err != nil {
		t.Fatal(err)
	}
	const flows = 40
	for i := range flows {
		client := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(40000+i))
		if v, _ := run(t, d, packet.TCPFrame(lbMAC, clientMAC, client, netip.AddrPortFrom(svcVIP4, 80), packet.SYN, nil)); v != xdpTX {
			t.Fatalf("flow %d: verdict %d, want XDP_TX", i, v)
		}
	}
	u, err := d.MapUsage()
	if err != nil {
		t.Fatal(err)
	}
	if got := u["services"]; got.Entries != 3 || got.MaxEntries == 0 {
		t.Errorf("services usage %+v, want 3 entries of a non-zero capacity", got)
	}
	if got := u["flows"]; got.Entries != flows || got.MaxEntries < flows {
		t.Errorf("flows usage %+v, want %d entries", got, flows)
	}
	if _, ok := u["maglev_tables"]; ok {
		t.Error("arrays are always full and are not reported")
	}
}
