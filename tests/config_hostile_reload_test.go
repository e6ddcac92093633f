package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// TestReloadHostileConfig: SIGHUP with a configuration that once wedged
// or crashed the daemon (an include of a FIFO and of /dev/zero, a
// ${_RANDOM} whose range overflowed) leaves it answering, MASTER with its
// VIP, and a SIGTERM right after still stops it.
func TestReloadHostileConfig(t *testing.T) {
	conf := VRRPConf("hx1", 71, 150, "1", "192.0.2.140/24", "")
	h, node := StartMaster(t, "hx1", "192.0.2.41/24", conf, 6*time.Second, "--dataplane", "none")

	fifo := filepath.Join(node.Dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	hostile := strings.Replace(conf, "router_id hx1", "router_id r${_RANDOM 0 9223372036854775807}", 1) +
		fmt.Sprintf("include %s\ninclude /dev/zero\n", fifo)
	if err := os.WriteFile(node.Conf, []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, 10*time.Second, func() error {
		st, err := node.StatusErr()
		if err != nil {
			return err
		}
		if st.Reloads != 1 {
			return fmt.Errorf("%d reloads", st.Reloads)
		}
		id, err := strconv.ParseUint(strings.TrimPrefix(st.RouterID, "r"), 10, 64)
		if err != nil || id > 9223372036854775807 {
			return fmt.Errorf("router_id %q", st.RouterID)
		}
		return nil
	})
	log := node.Proc.Log()
	for _, want := range []string{"include: cannot read " + fifo + ": a FIFO, not a regular file", "include: cannot read /dev/zero: a character device"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if in := instanceOf(t, node); in.State != "MASTER" || !HasAddr(t, h, "192.0.2.140") {
		t.Errorf("after the reload: %s, VIP present %v", in.State, HasAddr(t, h, "192.0.2.140"))
	}
	start := time.Now()
	node.Stop(syscall.SIGTERM)
	t.Logf("reloaded with a FIFO and /dev/zero included; SIGTERM stopped the daemon in %s", time.Since(start).Round(time.Millisecond))
}
