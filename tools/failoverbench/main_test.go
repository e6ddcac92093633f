package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", ms(7), summary{N: 1, Runs: 1, Median: 7 * time.Millisecond, Min: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"odd unsorted", ms(30, 10, 20), summary{N: 3, Runs: 3, Median: 20 * time.Millisecond, Min: 10 * time.Millisecond, Max: 30 * time.Millisecond}},
		{"even takes the mean of the middle two", ms(40, 10, 20, 30), summary{N: 4, Runs: 4, Median: 25 * time.Millisecond, Min: 10 * time.Millisecond, Max: 40 * time.Millisecond}},
		{"missed runs count only in Runs", ms(-1, 5, -1), summary{N: 1, Runs: 3, Median: 5 * time.Millisecond, Min: 5 * time.Millisecond, Max: 5 * time.Millisecond}},
		{"all missed", ms(-1, -1), summary{Runs: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.in); got != tt.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSummaryCellAndRatio(t *testing.T) {
	a := summarize([]time.Duration{3100 * time.Millisecond, 3300 * time.Millisecond, 3200 * time.Millisecond})
	b := summarize([]time.Duration{66400 * time.Microsecond, -1})
	none := summarize([]time.Duration{-1})
	tests := []struct{ got, want string }{
		{a.cell(), "3200 [3100-3300]"},
		{b.cell(), "66.4 [66.4-66.4] (1/2)"},
		{none.cell(), "- (0/1)"},
		{ratio(a, a), "1.00"},
		{ratio(b, a), "0.02"},
		{ratio(a, none), "-"},
		{ratio(none, a), "-"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "all", want: []string{"crash-v2", "graceful-v2", "crash-v3", "graceful-v3"}},
		{in: "graceful-v3, crash-v2", want: []string{"crash-v2", "graceful-v3"}},
		{in: "crash-v3,crash-v3", want: []string{"crash-v3"}},
		{in: "all,crash-v2", want: []string{"crash-v2", "graceful-v2", "crash-v3", "graceful-v3"}},
		{in: "", wantErr: true},
		{in: " , ", wantErr: true},
		{in: "crash-v4", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseScenarios(tt.in)
		if tt.wantErr {
			if !errors.Is(err, errBadFlag) {
				t.Errorf("parseScenarios(%q) error = %v, want errBadFlag", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseScenarios(%q): %v", tt.in, err)
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("parseScenarios(%q) = %v, want %v", tt.in, names, tt.want)
		}
	}
}

func FuzzParseScenarios(f *testing.F) {
	for _, s := range []string{"all", "crash-v2,graceful-v3", "", ",,", "crash-v9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseScenarios(s)
		if err != nil {
			if !errors.Is(err, errBadFlag) {
				t.Fatalf("error %v does not wrap errBadFlag", err)
			}
			return
		}
		// A subsequence of knownScenarios: known, in order, no duplicates.
		i := 0
		for _, g := range got {
			for i < len(knownScenarios) && knownScenarios[i].Name != g.Name {
				i++
			}
			if i == len(knownScenarios) {
				t.Fatalf("parseScenarios(%q) = %v: not an ordered subset of the known scenarios", s, got)
			}
			i++
		}
	})
}

func TestParseDaemons(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "xdpvip,keepalived", want: []string{"xdpvip", "keepalived"}},
		{in: "keepalived, xdpvip-none ,xdpvip", want: []string{"keepalived", "xdpvip-none", "xdpvip"}},
		{in: "xdpvip,xdpvip", wantErr: true},
		{in: "bird", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseDaemons(tt.in)
		if tt.wantErr {
			if !errors.Is(err, errBadFlag) {
				t.Errorf("parseDaemons(%q) error = %v, want errBadFlag", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDaemons(%q): %v", tt.in, err)
			continue
		}
		var names []string
		for _, d := range got {
			names = append(names, d.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("parseDaemons(%q) = %v, want %v", tt.in, names, tt.want)
		}
	}
	d, _ := parseDaemons("xdpvip-none")
	if !slices.Equal(d[0].Extra, []string{"--dataplane", "none"}) || d[0].Keepalived {
		t.Errorf("xdpvip-none = %+v", d[0])
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{args: nil},
		{args: []string{"--runs", "7", "--scenarios", "crash-v3", "--xdpvip", "/x"}},
		{args: []string{"--runs", "0"}, wantErr: true},
		{args: []string{"--probe-interval", "0s"}, wantErr: true},
		{args: []string{"--daemons", "nope"}, wantErr: true},
		{args: []string{"stray"}, wantErr: true},
		{args: []string{"--no-such-flag"}, wantErr: true},
	}
	for _, tt := range tests {
		o, err := parseFlags(tt.args)
		if tt.wantErr != (err != nil) {
			t.Errorf("parseFlags(%q) error = %v, wantErr %v", tt.args, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, errBadFlag) {
			t.Errorf("parseFlags(%q) error %v does not wrap errBadFlag", tt.args, err)
		}
		if err == nil && len(tt.args) == 0 && (o.runs != 5 || len(o.scenarios) != 4 || len(o.daemons) != 2) {
			t.Errorf("defaults = runs %d, %d scenarios, %d daemons; want 5, 4, 2", o.runs, len(o.scenarios), len(o.daemons))
		}
	}
	o, err := parseFlags([]string{"--runs", "7", "--scenarios", "crash-v3", "--xdpvip", "/x"})
	if err != nil || o.runs != 7 || o.scenarios[0].Name != "crash-v3" || o.xdpvip != "/x" {
		t.Errorf("parseFlags = %+v, %v", o, err)
	}
}

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{time.Second, "1"},
		{100 * time.Millisecond, "0.1"},
		{1500 * time.Millisecond, "1.5"},
		{3 * time.Second, "3"},
		{10 * time.Millisecond, "0.01"},
	}
	for _, tt := range tests {
		if got := formatSeconds(tt.in); got != tt.want {
			t.Errorf("formatSeconds(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRenderConf checks that the rendered config means what the benchmark
// says to both daemons: xdpvip's parser reads it back, and keepalived's
// own config test accepts it when keepalived is installed.
func TestRenderConf(t *testing.T) {
	for _, sc := range knownScenarios {
		for _, n := range []nodeConf{{"lb1", "MASTER", 100}, {"lb2", "BACKUP", 90}} {
			t.Run(sc.Name+"/"+n.RouterID, func(t *testing.T) {
				text := renderConf(sc, n)
				cfg, diags, err := config.Parse("bench.conf", []byte(text))
				if err != nil {
					t.Fatalf("parse: %v\n%s", err, text)
				}
				for _, d := range diags {
					t.Errorf("diagnostic: %v", d)
				}
				in := cfg.Instance("VI_1")
				if in == nil {
					t.Fatalf("no VI_1 in\n%s", text)
				}
				if in.Version != sc.Version || in.AdvertInt != sc.AdvertInt || in.Priority != n.Priority ||
					in.VRID != vrid || in.InitialState != n.State || in.Interface != hostIface {
					t.Errorf("instance = v%d %v prio %d vrid %d %s %s", in.Version, in.AdvertInt, in.Priority, in.VRID, in.InitialState, in.Interface)
				}
				wantAuth := config.AuthNone
				if sc.Version == 2 {
					wantAuth = config.AuthPass
				}
				if in.AuthType != wantAuth {
					t.Errorf("auth %q, want %q", in.AuthType, wantAuth)
				}
				if len(in.VIPs) != 1 || !strings.Contains(text, vipPrefix) {
					t.Errorf("VIPs = %+v", in.VIPs)
				}
				kd, err := exec.LookPath("keepalived")
				if err != nil {
					return
				}
				path := filepath.Join(t.TempDir(), "keepalived.conf")
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(kd, "-t", "-f", path).CombinedOutput(); err != nil {
					t.Errorf("keepalived -t: %v\n%s\n%s", err, out, text)
				}
			})
		}
	}
}

func TestObserver(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name  string
		marks []struct {
			m metric
			d time.Duration
		}
		want [numMetrics]time.Duration
	}{
		{
			name: "first mark wins, earlier ones ignored",
			marks: []struct {
				m metric
				d time.Duration
			}{{metricMaster, -time.Second}, {metricMaster, 30 * time.Millisecond}, {metricMaster, 10 * time.Millisecond}, {metricNeigh, 31 * time.Millisecond}, {metricTCP, 40 * time.Millisecond}},
			want: [numMetrics]time.Duration{30 * time.Millisecond, 31 * time.Millisecond, 40 * time.Millisecond},
		},
		{
			name: "a metric never met is -1",
			marks: []struct {
				m metric
				d time.Duration
			}{{metricMaster, 5 * time.Millisecond}},
			want: [numMetrics]time.Duration{5 * time.Millisecond, -1, -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o observer
			o.mark(metricTCP, at(time.Millisecond)) // not armed: ignored
			o.arm(t0)
			for _, m := range tt.marks {
				o.mark(m.m, at(m.d))
			}
			start := time.Now()
			got := o.wait(time.Now().Add(50 * time.Millisecond))
			if got != tt.want {
				t.Errorf("wait = %v, want %v", got, tt.want)
			}
			complete := !slices.Contains(tt.want[:], -1)
			if complete && time.Since(start) >= 50*time.Millisecond {
				t.Errorf("wait did not return as soon as every metric was met")
			}
			o.mark(metricNeigh, at(time.Millisecond)) // disarmed: ignored
			if o.at[metricNeigh] != at(tt.want[metricNeigh]) && tt.want[metricNeigh] >= 0 {
				t.Errorf("a mark after wait changed the result")
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	r := results{}
	sc := knownScenarios[2] // crash-v3
	r.add(sc.Name, "xdpvip", [numMetrics]time.Duration{300 * time.Millisecond, 301 * time.Millisecond, 303 * time.Millisecond})
	r.add(sc.Name, "keepalived", [numMetrics]time.Duration{200 * time.Millisecond, 202 * time.Millisecond, -1})
	var buf bytes.Buffer
	printTable(&buf, r, []scenario{sc}, []daemonSpec{knownDaemons["xdpvip"], knownDaemons["keepalived"]})
	out := buf.String()
	for _, want := range []string{
		"crash-v3: crash (SIGKILL + cable down), VRRPv3 advert_int 0.1",
		"xdpvip median [min-max]", "keepalived median [min-max]", "xdpvip/keepalived",
		"300 [300-300]", "200 [200-200]", "1.50", "- (0/1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchVRRPv3 runs the real benchmark once per VRRPv3 scenario with
// xdpvip and keepalived, and checks every metric was met within the bound
// of issue 3 (3 × advert_int + skew after a crash, skew after a graceful
// stop), with margin for a loaded machine.
func TestBenchVRRPv3(t *testing.T) {
	if testing.Short() {
		t.Skip("needs network namespaces and real daemons; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "nsenter", "keepalived"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	bin := filepath.Join(t.TempDir(), "xdpvip")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/xdpvip").CombinedOutput(); err != nil {
		t.Fatalf("building xdpvip: %v\n%s", err, out)
	}
	o, err := parseFlags([]string{"--runs", "1", "--scenarios", "crash-v3,graceful-v3", "--xdpvip", bin})
	if err != nil {
		t.Fatal(err)
	}
	var out, progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, o, &out, &progress)
	t.Logf("%s\n%s", progress.String(), out.String())
	if err != nil {
		t.Fatal(err)
	}
	skew := time.Duration(256-90) * 100 * time.Millisecond / 256 // v3: (256-priority) × advert_int / 256
	bounds := map[string]time.Duration{
		"crash-v3":    3*100*time.Millisecond + skew,
		"graceful-v3": skew,
	}
	for _, sc := range o.scenarios {
		for _, d := range o.daemons {
			for m := range numMetrics {
				s := res.summary(sc.Name, d.Name, m)
				limit := bounds[sc.Name] + 100*time.Millisecond
				if m != metricMaster {
					limit += 200 * time.Millisecond // GARP handling and the 5 ms probe
				}
				if s.N != 1 || s.Max > limit {
					t.Errorf("%s %s %s: %+v, want 1 sample within %v", sc.Name, d.Name, m, s, limit)
				}
			}
		}
	}
	for _, d := range o.daemons {
		if !strings.Contains(out.String(), d.Name+" median") {
			t.Errorf("table lacks a %s column", d.Name)
		}
	}
	m := regexp.MustCompile(`namespaces (fb[0-9a-f]{6})-\*`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("header names no namespace prefix:\n%s", out.String())
	}
	list, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), m[1]+"-") {
		t.Errorf("namespaces %s-* left behind:\n%s", m[1], list)
	}
	for _, h := range []string{"lb1", "lb2"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/bpf", m[1]+"-"+h)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pins of %s left behind: %v", h, err)
		}
	}
}

func TestLateness(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name            string
		prev, due, woke time.Time
		want            time.Duration
	}{
		{"on time", at(0), at(1), at(1), 0},
		{"woke early is no stall", at(0), at(1), at(0), 0},
		{"late to its tick", at(0), at(1), at(4), 3 * time.Millisecond},
		{"missed ticks: the gap counts", at(0), at(30), at(30), 29 * time.Millisecond},
		{"late and missed ticks: the larger", at(0), at(20), at(45), 44 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := lateness(tt.prev, tt.due, tt.woke, time.Millisecond); got != tt.want {
			t.Errorf("%s: lateness = %v, want %v", tt.name, got, tt.want)
		}
	}
	// The running meter reports a finite, non-negative stall.
	m := startStallMeter(time.Millisecond)
	if got := m.Stop(); got < 0 || got > time.Minute {
		t.Errorf("stall meter = %v", got)
	}
}
