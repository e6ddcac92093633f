package lvs

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func TestRates(t *testing.T) {
	key := ServiceKey{Proto: 6, Addr: netip.MustParseAddr("192.0.2.100"), Port: 80}
	rs := netip.MustParseAddr("192.0.2.21")
	view := func(c Counters, dc Counters) []ServiceView {
		return []ServiceView{{Key: key, Protocol: "TCP", Addr: key.Addr, Port: 80, Family: 4, QuorumUp: true, Counters: c,
			Dests: []DestView{{Addr: rs, Port: 80, Method: "DR", Programmed: true, Up: true, State: StateActive, Counters: dc}}}}
	}
	before := view(Counters{Conns: 10, InPkts: 100, InBytes: 6000}, Counters{Conns: 10, InPkts: 100, InBytes: 6000})
	after := view(Counters{Conns: 30, InPkts: 2100, InBytes: 126000}, Counters{Conns: 30, InPkts: 2100, InBytes: 126000})
	got := Rates(before, after, 2*time.Second)
	want := Counters{Conns: 10, InPkts: 1000, InBytes: 60000}
	if got[0].Counters != want || got[0].Dests[0].Counters != want {
		t.Fatalf("rates = %+v / %+v, want %+v", got[0].Counters, got[0].Dests[0].Counters, want)
	}
	// A counter that went backwards (dataplane restarted) counts from zero.
	got = Rates(after, before, time.Second)
	if got[0].Counters.InPkts != 100 {
		t.Fatalf("after a reset: %+v", got[0].Counters)
	}
	// A service absent before starts from zero.
	got = Rates(nil, after, time.Second)
	if got[0].Counters.Conns != 30 {
		t.Fatalf("new service: %+v", got[0].Counters)
	}
	var b bytes.Buffer
	if err := WriteList(&b, Rates(before, after, 2*time.Second), ListOptions{Rate: true}); err != nil {
		t.Fatal(err)
	}
	wantText := "xdpvip Virtual Server\n" +
		"Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n" +
		"  -> RemoteAddress:Port\n" +
		"TCP  192.0.2.100:80                     10     1000        0    60000        0\n" +
		"  -> 192.0.2.21:80                      10     1000        0    60000        0\n"
	if b.String() != wantText {
		t.Fatalf("listing:\n%s\nwant:\n%s", b.String(), wantText)
	}
}
