package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// promResult is the part of Prometheus's /api/v1/query answer we read.
type promResult struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// promQuery asks the Prometheus server in mon for q and returns each
// series' value by its instance label (the scraped node).
func promQuery(mon *testnet.Host, promAddr, q string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := mon.Exec(ctx, "curl", "-sf", "http://"+promAddr+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	var r promResult
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("query %s: %w: %s", q, err, out)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, out)
	}
	vals := map[string]string{}
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		vals[s.Metric["instance"]] = v
	}
	return vals, nil
}

// TestMetricsPrometheusFailover scrapes two xdpvip nodes with a real
// Prometheus server (Debian's package) at a 250 ms interval and follows a
// failover and a preemption through its query API; promtool accepts the
// exposition.
func TestMetricsPrometheusFailover(t *testing.T) {
	requireCommand(t, "prometheus", "prometheus")
	requireCommand(t, "promtool", "prometheus")
	requireCommand(t, "curl", "curl")
	n := testnet.New(t)
	a := n.AddHost("lvs1", "192.0.2.11/24")
	b := n.AddHost("lvs2", "192.0.2.12/24")
	mon := n.AddHost("mon", "192.0.2.30/24")
	ma, mb := "192.0.2.11:9165", "192.0.2.12:9165"
	na := StartXdpvip(t, a, VRRPConf("lvs1", 51, 100, "1", "192.0.2.100/24", ""), "--dataplane", "none", "--metrics-address", ma)
	nb := StartXdpvip(t, b, VRRPConf("lvs2", 51, 90, "1", "192.0.2.100/24", ""), "--dataplane", "none", "--metrics-address", mb)
	na.WaitState("VI_1", "MASTER", 6*time.Second)
	nb.WaitState("VI_1", "BACKUP", 2*time.Second)

	// promtool reads the exposition as Prometheus would.
	for _, addr := range []string{ma, mb} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := mon.Exec(ctx, "sh", "-c", "curl -sf http://"+addr+"/metrics | promtool check metrics")
		cancel()
		if err != nil {
			t.Fatalf("promtool check metrics on %s: %v\n%s", addr, err, out)
		}
		if out, err := mon.Exec(context.Background(), "curl", "-sf", "http://"+addr+"/healthz"); err != nil || string(out) != "ok\n" {
			t.Fatalf("/healthz on %s: %q %v", addr, out, err)
		}
	}

	dir := t.TempDir()
	conf := fmt.Sprintf("global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n  - job_name: xdpvip\n    static_configs:\n      - targets: [%q, %q]\n", ma, mb)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := "192.0.2.30:9090"
	prom := mon.Start("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	expect := func(what, q string, want map[string]string) {
		t.Helper()
		testnet.Eventually(t, 20*time.Second, func() error {
			if prom.Exited() {
				return fmt.Errorf("prometheus exited:\n%s", prom.Log())
			}
			got, err := promQuery(mon, promAddr, q)
			if err != nil {
				return err
			}
			for inst, v := range want {
				if got[inst] != v {
					return fmt.Errorf("%s: %s = %v, want %v", what, q, got, want)
				}
			}
			return nil
		})
	}
	state := `keepalived_vrrp_state{iname="VI_1",vrid="51",ip_address="192.0.2.100"}`
	expect("before the failover", state, map[string]string{ma: "2", mb: "1"})
	expect("up", "keepalived_up", map[string]string{ma: "1", mb: "1"})

	// lvs1 leaves: lvs2 becomes MASTER, and lvs1's target goes down.
	na.Stop(syscall.SIGTERM)
	nb.WaitState("VI_1", "MASTER", 5*time.Second)
	expect("after the failover", state, map[string]string{mb: "2"})
	expect("lvs1 gone", `up{job="xdpvip"}`, map[string]string{ma: "0", mb: "1"})

	// lvs1 returns with the higher priority and preempts: both follow.
	na.Restart("--dataplane", "none", "--metrics-address", ma)
	na.WaitState("VI_1", "MASTER", 8*time.Second)
	expect("after the preemption", state, map[string]string{ma: "2", mb: "1"})
	// lvs2 advertised while it was MASTER: its counter went up and stays.
	got, err := promQuery(mon, promAddr, "keepalived_advertisements_sent_total")
	if err != nil {
		t.Fatal(err)
	}
	if v := got[mb]; v == "" || v == "0" {
		t.Fatalf("lvs2's keepalived_advertisements_sent_total = %q after being MASTER (all: %v)", v, got)
	}
}
