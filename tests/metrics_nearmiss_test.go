package tests

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// scrapeMetric fetches addr's /metrics from inside host and returns the
// samples of metric name (exactly that name, any labels) by their label
// set as exposed ("{iname=...}").
func scrapeMetric(t testing.TB, host *testnet.Host, addr, name string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := host.Exec(ctx, "curl", "-sf", "http://"+addr+"/metrics")
	if err != nil {
		t.Fatalf("%s: curl %s/metrics: %v\n%s", host.Name(), addr, err, out)
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: bad sample %q: %v", addr, line, err)
		}
		got[line[len(name):i]] = v
	}
	return got
}

// one returns the only sample of m whose labels contain all of want.
func one(t testing.TB, m map[string]float64, what string, want ...string) float64 {
	t.Helper()
	var vals []float64
	for labels, v := range m {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(labels, w)
		}
		if ok {
			vals = append(vals, v)
		}
	}
	if len(vals) != 1 {
		t.Fatalf("%s %v: %d samples in %v, want 1", what, want, len(vals), m)
	}
	return vals[0]
}

// TestMetricsNearMiss freezes the MASTER (SIGSTOP) for 65 % of the
// BACKUP's Master_Down_Interval, right after one of its adverts reached
// the BACKUP, then lets it go on (SIGCONT). The BACKUP must not fail over,
// and its near-miss telemetry must show the gap: the gap gauge over 0.5 on
// /metrics, a gap histogram observation past two intervals, the warning in
// its log, the largest gap in `xdpvip status --json` and in the text
// status. The BACKUP receives through XDP (the ring buffer's kernel
// stamps) in one run, through the raw socket (SO_TIMESTAMPNS) in the
// other; the MASTER runs XDP in both, so it sends as soon as it wakes (a
// MASTER without XDP waits one interval after a late timer). Each run
// freezes the MASTER twice.
func TestMetricsNearMiss(t *testing.T) {
	requireCommand(t, "curl", "curl")
	for _, backupPlane := range []string{"xdp", "none"} {
		t.Run("backup-"+backupPlane, func(t *testing.T) { testNearMiss(t, backupPlane) })
	}
}

func testNearMiss(t *testing.T, backupPlane string) {
	n := testnet.New(t)
	a := n.AddHost("nm1", "192.0.2.11/24")
	b := n.AddHost("nm2", "192.0.2.12/24")
	ma, mb := "192.0.2.11:9165", "192.0.2.12:9165"
	// The MASTER tracks a vrrp_script that succeeds (weight 0: a failure
	// would be a FAULT), so its script metrics show.
	script := "vrrp_script chk_ok {\n    script \"/bin/true\"\n    interval 1\n}\n"
	master := StartXdpvip(t, a, script+VRRPConf("nm1", 52, 200, "1", "192.0.2.100/24", "    version 3\n    track_script {\n        chk_ok\n    }"),
		"--dataplane", "xdp", "--metrics-address", ma)
	master.WaitState("VI_1", "MASTER", 8*time.Second)
	backup := StartXdpvip(t, b, VRRPConf("nm2", 52, 100, "1", "192.0.2.100/24", "    version 3"),
		"--dataplane", backupPlane, "--metrics-address", mb)
	backup.WaitState("VI_1", "BACKUP", 3*time.Second)
	// The MASTER's counters: it became MASTER once, with no MASTER heard,
	// and sent its GARP rounds; the BACKUP never was MASTER.
	testnet.Eventually(t, 5*time.Second, func() error {
		for _, c := range []struct {
			name string
			want float64
			host *testnet.Host
			addr string
			lbls []string
		}{
			{"keepalived_become_master_total", 1, a, ma, nil},
			{"keepalived_release_master_total", 0, a, ma, nil},
			{"xdpvip_vrrp_become_master_by_cause_total", 1, a, ma, []string{`cause="no_master"`}},
			{"keepalived_script_status", 1, a, ma, []string{`name="chk_ok"`}},
			{"keepalived_script_state", 1, a, ma, []string{`name="chk_ok"`}},
			{"keepalived_become_master_total", 0, b, mb, nil},
			{"keepalived_priority_zero_received_total", 0, b, mb, nil},
		} {
			if got := one(t, scrapeMetric(t, c.host, c.addr, c.name), c.name, c.lbls...); got != c.want {
				return fmt.Errorf("%s: %s%v = %v, want %v", c.host.Name(), c.name, c.lbls, got, c.want)
			}
		}
		if g := one(t, scrapeMetric(t, a, ma, "keepalived_gratuitous_arp_delay_total"), "garp"); g < 1 {
			return fmt.Errorf("keepalived_gratuitous_arp_delay_total %v on the MASTER, want ≥ 1", g)
		}
		return nil
	})
	pid := master.Proc.Cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })

	bi, err := backup.Instance("VI_1")
	if err != nil {
		t.Fatal(err)
	}
	wantRecv := map[string]string{"xdp": "xdp", "none": "socket"}[backupPlane]
	if bi.Receive != wantRecv {
		t.Fatalf("BACKUP receives through %q, want %q", bi.Receive, wantRecv)
	}
	mdi, err := time.ParseDuration(bi.MasterDownInterval)
	if err != nil || mdi != 3609375*time.Microsecond {
		t.Fatalf("BACKUP's Master_Down_Interval %q (%v), want 3.609375s (3 × 1 s + skew of priority 100)", bi.MasterDownInterval, err)
	}
	stall := time.Duration(0.65 * float64(mdi))
	// Let a few steady gaps be measured first.
	testnet.Eventually(t, 10*time.Second, func() error {
		in, err := backup.Instance("VI_1")
		if err != nil {
			return err
		}
		if in.AdvertGaps == nil || in.AdvertGaps.Count < 2 {
			return fmt.Errorf("fewer than 2 gaps measured: %+v", in.AdvertGaps)
		}
		return nil
	})
	steady := statusJSON(t, backup).Instances[0]
	// Steady gaps are about one interval (0.28 of the down interval); a
	// loaded machine may delay an advert, so only "measured" is required.
	if steady.LargestGapRatio <= 0 || steady.LargestGapRatio >= 1 {
		t.Fatalf("steady adverts: largest gap %.3f s ratio %.3f, want between 0 and 1", steady.LargestGapSeconds, steady.LargestGapRatio)
	}
	t.Logf("steady: largest gap %.3f s, ratio %.3f", steady.LargestGapSeconds, steady.LargestGapRatio)
	m0 := master.Status().Instances[0]
	b0 := backup.Status().Instances[0]

	for run := 1; run <= 2; run++ {
		beforeBig := bigGaps(t, b, mb)
		// Freeze right after an advert reached the BACKUP, so that the gap
		// is the stall plus a poll's latency, not up to an interval more.
		in0 := backup.Status().Instances[0].AdvertsIn
		testnet.Eventually(t, 3*time.Second, func() error {
			in, err := backup.Instance("VI_1")
			if err != nil {
				return err
			}
			if in.AdvertsIn == in0 {
				return fmt.Errorf("no new advert")
			}
			return nil
		})
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		holdState(t, backup, "BACKUP", stall)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d: MASTER stopped for %v (%.0f %% of %v)", run, time.Since(stopped).Round(time.Millisecond), 100*float64(time.Since(stopped))/float64(mdi), mdi)

		// The MASTER's next advert closes the gap: the gauge rises past 0.5.
		var ratio float64
		testnet.Eventually(t, 5*time.Second, func() error {
			ratio = one(t, scrapeMetric(t, b, mb, "xdpvip_vrrp_advert_gap_ratio"), "gap ratio", `iname="VI_1"`)
			if ratio <= 0.5 {
				return fmt.Errorf("xdpvip_vrrp_advert_gap_ratio %.3f, want > 0.5", ratio)
			}
			return nil
		})
		if ratio >= 1 {
			t.Fatalf("gap ratio %.3f: the gap reached Master_Down_Interval", ratio)
		}
		if got := bigGaps(t, b, mb); got != beforeBig+1 {
			t.Fatalf("run %d: %v gaps longer than 2.1 intervals in the histogram, want %v", run, got, beforeBig+1)
		}
		st := statusJSON(t, backup).Instances[0]
		if st.LargestGapSeconds < stall.Seconds() || st.LargestGapSeconds >= mdi.Seconds() || st.LargestGapRatio <= 0.5 {
			t.Fatalf("status --json: largest gap %.3f s ratio %.3f, want ≥ the stall %v, < %v, ratio > 0.5", st.LargestGapSeconds, st.LargestGapRatio, stall, mdi)
		}
		t.Logf("run %d: gauge %.3f; status: largest gap %.3f s, ratio %.3f", run, ratio, st.LargestGapSeconds, st.LargestGapRatio)
		text, err := backup.CLI("status")
		if err != nil {
			t.Fatalf("xdpvip status: %v\n%s", err, text)
		}
		if want := fmt.Sprintf("(%.2f)", st.LargestGapRatio); !strings.Contains(text, want) || !strings.Contains(text, "MAX GAP 1m") {
			t.Fatalf("xdpvip status does not show the gap %s:\n%s", want, text)
		}
		// No failover: the BACKUP stays BACKUP, nobody changed state.
		holdState(t, backup, "BACKUP", 2*time.Second)
	}
	if log := backup.Proc.Log(); !strings.Contains(log, "near miss") {
		t.Fatalf("no near-miss warning in the BACKUP's log:\n%s", log)
	}
	m1 := master.Status().Instances[0]
	b1 := backup.Status().Instances[0]
	if m1.State != "MASTER" || m1.Transitions != m0.Transitions || b1.Transitions != b0.Transitions || b1.BecomeMaster != b0.BecomeMaster {
		t.Fatalf("a failover happened: MASTER %s transitions %d→%d, BACKUP transitions %d→%d, became MASTER %d→%d",
			m1.State, m0.Transitions, m1.Transitions, b0.Transitions, b1.Transitions, b0.BecomeMaster, b1.BecomeMaster)
	}
}

// bigGaps is the number of advert gaps longer than 2.1 advert intervals
// in the BACKUP's histogram.
func bigGaps(t testing.TB, h *testnet.Host, addr string) float64 {
	t.Helper()
	count := one(t, scrapeMetric(t, h, addr, "xdpvip_vrrp_advert_gap_seconds_count"), "gap count", `iname="VI_1"`)
	le := one(t, scrapeMetric(t, h, addr, "xdpvip_vrrp_advert_gap_seconds_bucket"), "gap bucket", `iname="VI_1"`, `le="2.1"`)
	return count - le
}
