package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeSource struct{ s Snapshot }

func (f *fakeSource) MetricsSnapshot() Snapshot { return f.s }

func sample() Snapshot {
	return Snapshot{
		Instances: []Instance{{
			Name: "VI_1", Interface: "eth0", VRID: 51, State: StateMaster,
			VIPs: []string{"192.0.2.100", "192.0.2.101"}, AdvertsIn: 7, AdvertsOut: 120,
			BecomeMaster: 2, ReleaseMaster: 1, PriorityZeroIn: 1, PriorityZeroOut: 1, GARPDelays: 2,
			Conflicts: 5, Reannounced: 1, ConflictActive: true,
			Drops:           map[string]uint64{"truncated": 3, "length": 1, "auth": 4, "vrid": 9},
			Failovers:       map[string]uint64{"master_down": 1, "preempt": 1},
			AdvertGaps:      &Histogram{Bounds: []float64{0.5, 1, 2}, Counts: []uint64{5, 9, 10}, Count: 10, Sum: 8.5},
			LargestGapRatio: 0.4,
		}},
		Scripts: []Script{{Name: "chk_haproxy", OK: true, Running: true}},
		Services: []Service{{
			Address: "192.0.2.100", Port: 80, Protocol: "TCP", Conns: 10, PktsIn: 100, BytesIn: 6000,
			Backends: []Backend{{Address: "192.0.2.21", Port: 80, Weight: 3, Healthy: true, Conns: 10, PktsIn: 100, BytesIn: 6000}},
		}},
		XDP:     map[string]map[string]uint64{"eth0": {"valid": 7, "checksum": 2}},
		Maps:    map[string]map[string]MapUsage{"eth0": {"flows": {Entries: 25, MaxEntries: 100}}},
		Reloads: map[string]uint64{"applied": 2, "refused": 1},
		Checks: []Check{{Service: "192.0.2.100:80", Backend: "192.0.2.21:80", Kind: "TCP_CHECK", Success: 5, Failure: 1,
			Latency: &Histogram{Bounds: []float64{0.01, 0.1}, Counts: []uint64{5, 6}, Count: 6, Sum: 0.05}}},
	}
}

func TestExpositionValues(t *testing.T) {
	c := newCollector(&fakeSource{sample()}, map[string]string{"version": "1", "commit": "abc", "bpf_object": "f00", "goversion": "go"})
	want := `
# HELP keepalived_vrrp_state VRRP state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT; one series per VIP.
# TYPE keepalived_vrrp_state gauge
keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.100",vrid="51"} 2
keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.101",vrid="51"} 2
# HELP keepalived_packet_length_errors_total Adverts dropped for a length that does not match their address count.
# TYPE keepalived_packet_length_errors_total counter
keepalived_packet_length_errors_total{iname="VI_1",intf="eth0",vrid="51"} 4
# HELP keepalived_authentication_failure_total Adverts whose password differs from ours.
# TYPE keepalived_authentication_failure_total counter
keepalived_authentication_failure_total{iname="VI_1",intf="eth0",vrid="51"} 4
# HELP xdpvip_ipvs_backend_weight Weight of a real server as scheduled (0 while down with inhibit_on_failure).
# TYPE xdpvip_ipvs_backend_weight gauge
xdpvip_ipvs_backend_weight{local_address="192.0.2.100",local_mark="",local_port="80",proto="TCP",remote_address="192.0.2.21",remote_port="80"} 3
# HELP xdpvip_bpf_map_usage_ratio BPF map entries in use as a fraction of max_entries.
# TYPE xdpvip_bpf_map_usage_ratio gauge
xdpvip_bpf_map_usage_ratio{interface="eth0",map="flows"} 0.25
# HELP xdpvip_vrrp_split_brain_conflicts_total Split-brain evidence seen while MASTER: ARP / NA for a VIP with another MAC, adverts from another router.
# TYPE xdpvip_vrrp_split_brain_conflicts_total counter
xdpvip_vrrp_split_brain_conflicts_total{iname="VI_1",intf="eth0",vrid="51"} 5
# HELP xdpvip_vrrp_split_brain_active 1 while split-brain evidence keeps coming (until 3 advert intervals without).
# TYPE xdpvip_vrrp_split_brain_active gauge
xdpvip_vrrp_split_brain_active{iname="VI_1",intf="eth0",vrid="51"} 1
# HELP xdpvip_vrrp_split_brain_reannounced_total VIP re-announcements (GARP / NA and notify_master) after a split brain ended.
# TYPE xdpvip_vrrp_split_brain_reannounced_total counter
xdpvip_vrrp_split_brain_reannounced_total{iname="VI_1",intf="eth0",vrid="51"} 1
# HELP xdpvip_reloads_total Configuration reloads by result.
# TYPE xdpvip_reloads_total counter
xdpvip_reloads_total{result="applied"} 2
xdpvip_reloads_total{result="refused"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"keepalived_vrrp_state", "keepalived_packet_length_errors_total", "keepalived_authentication_failure_total",
		"xdpvip_ipvs_backend_weight", "xdpvip_bpf_map_usage_ratio", "xdpvip_reloads_total",
		"xdpvip_vrrp_split_brain_conflicts_total", "xdpvip_vrrp_split_brain_active", "xdpvip_vrrp_split_brain_reannounced_total"); err != nil {
		t.Fatal(err)
	}
}

// The exposition passes Prometheus's own linter (the checks promtool runs).
func TestExpositionLint(t *testing.T) {
	c := newCollector(&fakeSource{sample()}, map[string]string{})
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestServerMetricsAndHealthz(t *testing.T) {
	var unhealthy error
	reg := Registry(&fakeSource{sample()}, map[string]string{"version": "1"})
	s, err := Listen("127.0.0.1:0", reg, func() error { return unhealthy }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, `keepalived_up 1`) || !strings.Contains(body, `xdpvip_build_info{`) ||
		!strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	unhealthy = errors.New("no instance running")
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "no instance running") {
		t.Fatalf("/healthz unhealthy: %d %q", code, body)
	}
}

func TestListenBadAddress(t *testing.T) {
	_, err := Listen("127.0.0.1:notaport", Registry(&fakeSource{}, nil), func() error { return nil }, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--metrics-address") {
		t.Fatalf("err = %v", err)
	}
}
