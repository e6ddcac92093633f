package lvs

import (
	"errors"
	"net/netip"
	"testing"
)

type statBackend struct {
	NullBackend
	stats   []ServiceStats
	applied [][]Service
	err     error
}

func (b *statBackend) Apply(s []Service) error        { b.applied = append(b.applied, s); return b.err }
func (b *statBackend) Stats() ([]ServiceStats, error) { return b.stats, nil }

// Fanout gives every backend the services and sums counters per service
// and per real server; real servers only one backend knows are kept.
func TestFanout(t *testing.T) {
	k := ServiceKey{Proto: ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	rs1, rs2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	a := &statBackend{stats: []ServiceStats{{Key: k, Conns: 1, PktsIn: 10, Dests: []DestStats{{Addr: rs1, Port: 80, Conns: 1, PktsIn: 10}}}}}
	b := &statBackend{stats: []ServiceStats{{Key: k, Conns: 2, PktsIn: 5, Dests: []DestStats{{Addr: rs1, Port: 80, Conns: 2, PktsIn: 5}, {Addr: rs2, Port: 80, Conns: 7}}}}}
	f := &Fanout{Kind: "xdp", Backends: []Backend{a, b}}
	st, err := f.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Conns != 3 || st[0].PktsIn != 15 || len(st[0].Dests) != 2 {
		t.Fatalf("merged %+v", st)
	}
	if d := st[0].Dests; d[0].Conns != 3 || d[0].PktsIn != 15 || d[1].Addr != rs2 || d[1].Conns != 7 {
		t.Fatalf("merged real servers %+v", d)
	}
	if a.stats[0].Conns != 1 || len(a.stats[0].Dests) != 1 {
		t.Fatal("Stats changed a backend's own counters")
	}
	b.err = errors.New("map full")
	svc := []Service{{Key: k}}
	if err := f.Apply(svc); err == nil || len(a.applied) != 1 || len(b.applied) != 1 {
		t.Fatalf("Apply: err %v, applied %d/%d times; want the error and both applied", err, len(a.applied), len(b.applied))
	}
	if f.Name() != "xdp" {
		t.Fatal(f.Name())
	}
}
