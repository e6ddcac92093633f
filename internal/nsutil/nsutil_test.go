package nsutil

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newNS creates a throw-away namespace with a veth pair inside it.
func newNS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("needs root (network namespaces) and no -short")
	}
	name := fmt.Sprintf("xvns%d", os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "add", "va", "type", "veth", "peer", "name", "vb"},
		{"-n", name, "link", "set", "va", "up"},
		{"-n", name, "link", "set", "vb", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return name
}

func TestDoRunsInsideAndRestores(t *testing.T) {
	name := newNS(t)
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	var links []string
	err = Do(name, func() error {
		ls, err := netlink.LinkList()
		for _, l := range ls {
			links = append(links, l.Attrs().Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(links, ","); !strings.Contains(got, "va") || !strings.Contains(got, "vb") {
		t.Errorf("links seen inside: %s", got)
	}
	if err := Do(name, func() error { return fmt.Errorf("boom") }); err == nil || err.Error() != "boom" {
		t.Errorf("f's error not returned: %v", err)
	}
	if err := Do("xv-no-such-namespace", func() error { return nil }); err == nil {
		t.Error("Do into a missing namespace succeeded")
	}
}

func TestAttachXDPPass(t *testing.T) {
	name := newNS(t)
	if err := AttachXDPPass(name, "vb"); err != nil {
		t.Fatal(err)
	}
	h, err := Handle(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("vb")
	if err != nil {
		t.Fatal(err)
	}
	if x := l.Attrs().Xdp; x == nil || !x.Attached {
		t.Errorf("no XDP program attached to vb: %+v", x)
	}
	if err := AttachXDPPass(name, "lo"); err == nil {
		t.Error("attaching to a non-veth succeeded")
	}
}
