package vrrp

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	seed := RecvConfig{Version: 2, VRID: 51, AuthType: AuthPass, AuthData: PasswordBytes("123456"),
		Interval: time.Second, VIPs: []netip.Addr{vip4}}
	v3 := RecvConfig{Version: 3, VRID: 51, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{vip6}}
	good2 := goldens[0].advert
	good3 := goldens[1].advert
	with := func(a Advert, f func(*Advert)) *Advert { a.Addrs = slicesClone(a.Addrs); f(&a); return &a }
	peer := netip.MustParseAddr("192.168.12.12")
	unicast := seed
	unicast.UnicastPeers = []netip.Addr{peer}
	peer2 := netip.MustParseAddr("192.168.12.13")
	ranged := seed // peer: min_ttl 250 max_ttl 254; peer2 without a range
	ranged.UnicastPeers, ranged.PeerTTL = []netip.Addr{peer, peer2}, []TTLRange{{Min: 250, Max: 254}}

	tests := []struct {
		name   string
		cfg    RecvConfig
		a      *Advert
		src    netip.Addr
		ttl    uint8
		reason DropReason
	}{
		{"seed advert", seed, &good2, src4, 255, DropNone},
		{"v3 advert, other interval is fine", v3, &good3, src6, 255, DropNone},
		{"ttl 64", seed, &good2, src4, 64, DropTTL},
		{"v3 hop limit 1", v3, &good3, src6, 1, DropTTL},
		{"version mismatch", v3, with(good3, func(a *Advert) { a.Version = 2 }), src6, 255, DropVersion},
		{"other VRID", seed, with(good2, func(a *Advert) { a.VRID = 52 }), src4, 255, DropVRID},
		{"type", seed, with(good2, func(a *Advert) { a.Type = 2 }), src4, 255, DropType},
		{"wrong password", seed, with(good2, func(a *Advert) { a.AuthData = PasswordBytes("654321") }), src4, 255, DropAuth},
		{"password prefix is not enough", seed, with(good2, func(a *Advert) { a.AuthData = PasswordBytes("1234567") }), src4, 255, DropAuth},
		{"no auth when PASS configured", seed, with(good2, func(a *Advert) { a.AuthType = AuthNone; a.AuthData = [8]byte{} }), src4, 255, DropAuthType},
		{"AH", seed, with(good2, func(a *Advert) { a.AuthType = AuthAH }), src4, 255, DropAuthType},
		{"v2 interval mismatch", seed, with(good2, func(a *Advert) { a.Interval = 2 * time.Second }), src4, 255, DropInterval},
		{"v3 interval 0 (the XDP program drops it as interval too)", v3, with(good3, func(a *Advert) { a.Interval = 0 }), src6, 255, DropInterval},
		{"v3 interval 10ms is the smallest", v3, with(good3, func(a *Advert) { a.Interval = 10 * time.Millisecond }), src6, 255, DropNone},
		{"VIP count", seed, with(good2, func(a *Advert) { a.Addrs = append(a.Addrs, vip4.Next()) }), src4, 255, DropAddrCount},
		{"other VIP", seed, with(good2, func(a *Advert) { a.Addrs[0] = vip4.Next() }), src4, 255, DropAddrCount},
		{"IPv6 VIP from IPv4 source", seed, with(good2, func(a *Advert) { a.Addrs[0] = vip6 }), src4, 255, DropFamily},
		{"unicast peer, any ttl", unicast, &good2, peer, 64, DropNone},
		{"unicast from a stranger", unicast, &good2, src4, 255, DropUnicastPeer},
		{"min_ttl 250: 250 passes", ranged, &good2, peer, 250, DropNone},
		{"max_ttl 254: 254 passes", ranged, &good2, peer, 254, DropNone},
		{"below min_ttl", ranged, &good2, peer, 249, DropTTL},
		{"above max_ttl", ranged, &good2, peer, 255, DropTTL},
		{"a peer without a range takes any", ranged, &good2, peer2, 1, DropNone},
		{"source is checked before the range", ranged, &good2, src4, 1, DropUnicastPeer},
		{"VIP list not checked when nil", RecvConfig{Version: 2, VRID: 51, AuthType: AuthPass, AuthData: PasswordBytes("123456"), Interval: time.Second},
			with(good2, func(a *Advert) { a.Addrs = nil }), src4, 255, DropNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate(tt.a, tt.src, tt.ttl)
			if got := ReasonOf(err); got != tt.reason {
				t.Fatalf("Validate = %v (reason %v), want %v", err, got, tt.reason)
			}
			if tt.reason == DropNone && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
		})
	}
}

// Every sentinel maps to its own reason, and wrapping keeps it.
func TestReasonOfWrapped(t *testing.T) {
	for _, re := range reasonErrs {
		err := errors.Join(errors.New("context"), re.err)
		if got := ReasonOf(err); got != re.reason {
			t.Errorf("ReasonOf(%v) = %v, want %v", re.err, got, re.reason)
		}
	}
}
