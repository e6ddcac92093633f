package netlab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
)

// requireLab skips unless namespaces can be made.
func requireLab(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("netlab: needs root and no -short (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netlab: needs the ip command (iproute2)")
	}
}

func namespaceExists(name string) bool {
	_, err := os.Stat("/var/run/netns/" + name)
	return err == nil
}

// TestPair: two namespaces joined by one veth reach each other; Close
// removes both.
func TestPair(t *testing.T) {
	requireLab(t)
	p, err := NewPair("nt", PairEnd{Name: "a", Iface: "a0", Addr: mustPrefix("198.18.0.1/24")},
		PairEnd{Name: "b", Iface: "b0", Addr: mustPrefix("198.18.0.2/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.A.Exec(ctx, "ping", "-c1", "-W2", p.B.Addr(4).String()); err != nil {
		t.Fatal(err)
	}
	nb, err := p.A.Neigh(p.B.Addr(4))
	if err != nil || !nb.Usable() || nb.MAC.String() != p.B.MAC().String() {
		t.Fatalf("a's entry for b: %v %v, want b's MAC %v", nb, err, p.B.MAC())
	}
	names := []string{p.A.NS(), p.B.NS()}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if namespaceExists(n) {
			t.Errorf("namespace %s left after Close", n)
		}
	}
}

// TestNetProcess: a process started in a host runs in its namespace, logs
// to its file and Stop ends its whole group; a bad host is an error that
// leaves nothing behind.
func TestNetProcess(t *testing.T) {
	requireLab(t)
	n, err := New("nt")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	h, err := n.AddHost("srv", "192.0.2.5/24", WithPort("p-srv"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddHost("bad", "192.0.2.6/33"); err == nil {
		t.Error("AddHost with a bad prefix: no error")
	}
	if _, err := n.AddHost("long", "", WithIface("an-interface-name")); err == nil {
		t.Error("AddHost with a 17-byte interface name: no error")
	}
	logPath := filepath.Join(t.TempDir(), "sh.log")
	p, err := h.Start(logPath, "sh", "-c", "ip -o link show eth0; sleep 600 & wait")
	if err != nil {
		t.Fatal(err)
	}
	if err := Poll(5*time.Second, func() error {
		if !strings.Contains(p.Log(), "eth0") {
			return os.ErrNotExist
		}
		return nil
	}); err != nil {
		t.Fatalf("log %q, want the namespace's eth0", p.Log())
	}
	p.Stop(time.Second)
	if !p.Exited() || PIDAlive(p.Cmd.Process.Pid) {
		t.Fatal("process still running after Stop")
	}
	hosts := n.Hosts()
	if len(hosts) != 1 || hosts[0] != h {
		t.Errorf("Hosts() = %v, want only srv", hosts)
	}
	prefix := n.Prefix()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/var/run/netns")
	if left := slices.IndexFunc(ents, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), prefix) }); left >= 0 {
		t.Errorf("namespace %s left after Close", ents[left].Name())
	}
}

func TestKeepalivedArgs(t *testing.T) {
	k := Keepalived{Dir: "/d", Conf: "/d/keepalived.conf"}
	want := "-n -l -D -G -P -f /d/keepalived.conf -p /d/keepalived-main.pid -r /d/keepalived-vrrp.pid -c /d/keepalived-checkers.pid"
	if got := strings.Join(k.Args(true), " "); got != want {
		t.Errorf("Args(quiet) = %q, want %q", got, want)
	}
	if got := strings.Join(k.Args(false), " "); strings.Contains(got, "-G") {
		t.Errorf("Args(not quiet) = %q, has -G", got)
	}
	dir := t.TempDir()
	k, err := WriteKeepalived(dir, "global_defs {}\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.VRRPPID(); err == nil {
		t.Error("VRRPPID without a pid file: no error")
	}
	for content, ok := range map[string]bool{"1234\n": true, "x\n": false, "0\n": false} {
		if err := os.WriteFile(k.PIDFile("vrrp"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if pid, err := k.VRRPPID(); (err == nil) != ok || (ok && pid != 1234) {
			t.Errorf("VRRPPID of %q = %d, %v", content, pid, err)
		}
	}
	k.RemovePIDFiles()
	if _, err := os.Stat(k.PIDFile("vrrp")); !os.IsNotExist(err) {
		t.Errorf("pid file left after RemovePIDFiles: %v", err)
	}
}

func TestWriteNginx(t *testing.T) {
	dir := t.TempDir()
	g, err := WriteNginx(dir, "rs1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(g.Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen 80;", `return 200 "rs1\n";`, "pid " + dir + "/nginx.pid;", "access_log " + g.AccessLog() + ";"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, b)
		}
	}
	for _, d := range []string{"logs", "tmp"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Errorf("%s/ not made: %v", d, err)
		}
	}
	if got := strings.Join(g.Args(), " "); got != "-c "+g.Conf+" -p "+dir+" -g daemon off;" {
		t.Errorf("Args = %q", got)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestECMPConf(t *testing.T) {
	real := "    real_server 10.78.1.21 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n"
	conf := ECMPConf("lb1", "10.78.1.1", 3, "        bfd\n", "    flow_sync_peer 10.78.1.12\n", "10.78.9.1", real)
	cfg, _, err := config.Parse("ecmp.conf", []byte(conf))
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	if cfg.BGP == nil || cfg.BGP.LocalAS != 65010 || len(cfg.BGP.Neighbors) != 1 || len(cfg.BGP.FlowSyncPeers) != 1 {
		t.Fatalf("bgp %+v; want local_as 65010, one neighbor, one flow_sync_peer", cfg.BGP)
	}
	nb := cfg.BGP.Neighbors[0]
	if nb.Addr.String() != "10.78.1.1" || nb.RemoteAS != 65000 || nb.HoldTime != 3*time.Second || !nb.BFD {
		t.Errorf("neighbor %+v; want 10.78.1.1, AS 65000, hold 3 s, bfd", nb)
	}
	if len(cfg.Instances) != 0 || len(cfg.VirtualServers) != 1 {
		t.Fatalf("%d instances, %d virtual servers; want none and one", len(cfg.Instances), len(cfg.VirtualServers))
	}
	vs := cfg.VirtualServers[0]
	if vs.Announce.Mode != config.AnnounceECMP || vs.Scheduler != "wrr" || vs.Method != config.MethodDR || len(vs.RealServers) != 1 {
		t.Errorf("virtual server %+v; want announce ecmp, wrr, DR, one real server", vs)
	}
}

func TestWriteNginxWith(t *testing.T) {
	dir := t.TempDir()
	g, err := WriteNginxWith(dir, "rs2", NginxOptions{Connections: 4096, Backlog: 4096, NoAccessLog: true, Big: 1000, BigRate: "10k"})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(g.Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker_connections 4096;", "listen 80 backlog=4096;", "access_log off;", `return 200 "rs2\n";`,
		"location = /big {\n            root " + dir + "/www;\n            limit_rate 10k;"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("nginx.conf has no %q:\n%s", want, conf)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "www", "big")); err != nil || fi.Size() != 1000 {
		t.Errorf("www/big: %v, %v; want 1000 bytes", fi, err)
	}
}
