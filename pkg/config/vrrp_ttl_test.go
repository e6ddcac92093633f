package config

import (
	"reflect"
	"strings"
	"testing"
)

// unicast_peer's min_ttl / max_ttl are kept per peer, in order (0 / 255
// when not given), and a min above the max is warned about as keepalived
// does; unicast_ttl 0 says what is sent instead. The keywords the daemon
// now acts on warn no more.
func TestUnicastTTLKeywords(t *testing.T) {
	src := `vrrp_instance V {
    interface eth0
    virtual_router_id 1
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2 min_ttl 250
        10.0.0.3
        10.0.0.4 max_ttl 10 min_ttl 20
    }
    unicast_ttl 0
    lower_prio_no_advert
    higher_prio_send_advert
    garp_lower_prio_repeat 2
    garp_lower_prio_delay 3
    virtual_ipaddress {
        10.0.0.100
    }
}
`
	cfg, diags, err := Parse("t.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	want := []TTLRange{{Min: 250, Max: 255}, {Min: 0, Max: 255}, {Min: 20, Max: 10}}
	if !reflect.DeepEqual(in.UnicastPeerTTL, want) || len(in.UnicastPeers) != 3 || !in.CheckUnicastSrc {
		t.Fatalf("peers %v ranges %+v check_unicast_src %v, want ranges %+v", in.UnicastPeers, in.UnicastPeerTTL, in.CheckUnicastSrc, want)
	}
	var msgs []string
	for _, d := range diags {
		msgs = append(msgs, d.Keyword+": "+d.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, w := range []string{"10.0.0.4: min_ttl 20 > max_ttl 10", "unicast_ttl: 0: "} {
		if !strings.Contains(all, w) {
			t.Errorf("no diagnostic %q in:\n%s", w, all)
		}
	}
	if strings.Contains(all, "does not act on it") {
		t.Errorf("a keyword the daemon acts on is still warned about:\n%s", all)
	}
	if len(msgs) != 2 {
		t.Errorf("%d diagnostics, want 2:\n%s", len(msgs), all)
	}
}
