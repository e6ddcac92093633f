package xdpplane

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpvip/xdpvip/internal/testnet"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

// The interface is deleted and re-created with the same name: Reopen
// attaches the program to the new one (the pinned link of the deleted one
// is severed) and keeps the pinned maps, so the VRID configuration and the
// VIP role survive.
func TestReopenOnRecreatedInterface(t *testing.T) {
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.1/24")
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/sys/fs/bpf", "xdpvip-test-"+hex.EncodeToString(rnd[:]))
	t.Cleanup(func() { os.RemoveAll(dir) })

	cfg, _, err := config.Parse("t.conf", []byte(`vrrp_instance VI {
    interface eth0
    virtual_router_id 51
    priority 100
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	ic := cfg.Instance("VI")
	vips := []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	var p *Plane
	lb.MustDo(func() (err error) {
		p, err = Open(dataplane.Options{Iface: lb.Iface(), BPFDir: dir})
		return err
	})
	defer p.Close()
	if err := p.Configure(ic); err != nil {
		t.Fatal(err)
	}
	p.SetForwarding(vips, true)
	if !p.Forwarding(vips) {
		t.Fatal("not forwarding after SetForwarding(true)")
	}

	lb.MustExec("ip", "link", "del", lb.Iface())
	lb.MustExec("ip", "link", "add", lb.Iface(), "type", "veth", "peer", "name", "other")
	lb.MustExec("ip", "link", "set", lb.Iface(), "up")
	lb.MustDo(func() error { return p.Reopen(nil) })

	if out := lb.MustExec("ip", "-d", "link", "show", lb.Iface()); !strings.Contains(string(out), "prog/xdp") {
		t.Fatalf("no XDP program on the re-created %s:\n%s", lb.Iface(), out)
	}
	if !p.Forwarding(vips) {
		t.Fatal("the VIP role did not survive the re-open (pinned maps not reused)")
	}
	if _, ok := p.Peer(51, 4).LastAdvert(); ok {
		t.Fatal("a peer record without any advert")
	}
	p.SetForwarding(vips, false)
	if p.Forwarding(vips) {
		t.Fatal("still forwarding after SetForwarding(false)")
	}
}
