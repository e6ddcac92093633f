package tests

import (
	"os/exec"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// relinkAway is how long a re-created interface is gone: longer than the
// Master_Down_Interval, as a driver reload or a network manager rebuilding
// a bond or VLAN takes.
const relinkAway = time.Second

// TestFaultRelink: a node's interface is deleted and, relinkAway later,
// re-created with the same name, MAC and address (a new ifindex), once on
// the MASTER and once on the BACKUP. Deleting the MASTER's interface takes
// its VIP with it and the BACKUP takes over; either way the node that comes
// back must hear its peer on the new interface and stay BACKUP: never the
// VIP on both nodes.
func TestFaultRelink(t *testing.T) {
	runFaultOnRoles(t, "relink", 3, func(r *faultRun, victim faultPeer) {
		relinkHost(r.T, r.lab.net, victim.H(), relinkAway)
	})
}

// relinkHost deletes h's interface (both ends of its veth) and re-creates it
// after away: the same switch port name on the bridge, the same interface
// name, MAC and addresses in h's namespace, up.
func relinkHost(t *testing.T, n *testnet.Net, h *testnet.Host, away time.Duration) {
	t.Helper()
	link, port, hh, _ := switchPort(t, n, h)
	if err := hh.LinkDel(link); err != nil {
		t.Fatalf("%s: deleting %s: %v", h.Name(), h.Iface(), err)
	}
	time.Sleep(away) // the fault's own length: the interface is gone meanwhile
	cmds := [][]string{
		{"-n", n.SwitchNS(), "link", "add", port.Attrs().Name, "type", "veth", "peer", "name", h.Iface(),
			"netns", h.NS(), "address", link.Attrs().HardwareAddr.String()},
		{"-n", n.SwitchNS(), "link", "set", port.Attrs().Name, "master", testnet.BridgeName, "up"},
	}
	for _, p := range h.Addrs() {
		cmds = append(cmds, []string{"-n", h.NS(), "addr", "add", p.String(), "dev", h.Iface()})
	}
	cmds = append(cmds, []string{"-n", h.NS(), "link", "set", h.Iface(), "up"})
	for _, c := range cmds {
		if out, err := execIP(c...); err != nil {
			t.Fatalf("re-creating %s's %s: ip %v: %v\n%s", h.Name(), h.Iface(), c, err, out)
		}
	}
	re, err := hh.LinkByName(h.Iface())
	if err != nil {
		t.Fatal(err)
	}
	if re.Attrs().Index == link.Attrs().Index {
		t.Fatalf("%s: re-created %s kept ifindex %d", h.Name(), h.Iface(), re.Attrs().Index)
	}
	t.Logf("%s: %s re-created after %v (ifindex %d → %d)", h.Name(), h.Iface(), away, link.Attrs().Index, re.Attrs().Index)
}

// execIP runs the ip command and returns its combined output.
func execIP(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	return string(out), err
}
