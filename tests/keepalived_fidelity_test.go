package tests

// The keepalived differential test: keepalived 2.2.7 is the oracle for
// every configuration of the corpus in testdata/keepalived. For each file
// it runs `keepalived -t` and `xdpvip check-config --json` and asserts the
// same verdict; where both accept, it compares what they parsed: keepalived's
// configuration dump (-d) of its VRRP and checker processes against
// xdpvip's model.
//
// Verdict rule (issue 11.3):
//   - keepalived silent (exit 0): xdpvip accepts, and its only warnings
//     name xdpvip (a declared difference, e.g. "not supported by xdpvip")
//     or keepalived (a correction keepalived makes silently);
//   - keepalived reports something (exit 5): xdpvip reports something too,
//     on every line keepalived names (a warning when it applies the same
//     correction, an error when it refuses);
//   - keepalived cannot run (exit 1/4): xdpvip refuses.
// Values are compared only when xdpvip accepts (a refused file has no
// meaning to compare).

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/script"
)

// xdModel is the part of `check-config --json` the test compares.
type xdModel struct {
	Valid       bool `json:"valid"`
	Diagnostics []struct {
		Pos, Keyword, Severity, Message string
	} `json:"diagnostics"`
	Config *struct {
		Global struct {
			VRRPMcastGroup4     string `json:"vrrp_mcast_group4"`
			VRRPMcastGroup6     string `json:"vrrp_mcast_group6"`
			VRRPCheckUnicastSrc bool   `json:"vrrp_check_unicast_src"`
		} `json:"global_defs"`
		Scripts    []xdScript `json:"vrrp_script"`
		SyncGroups []struct {
			Name            string    `json:"name"`
			Members         []string  `json:"group"`
			TrackScripts    []xdTrack `json:"track_script"`
			TrackInterfaces []xdTrack `json:"track_interface"`
		} `json:"vrrp_sync_group"`
		Instances      []xdInstance `json:"vrrp_instance"`
		VirtualServers []xdVS       `json:"virtual_server"`
	} `json:"config"`
}

type xdScript struct {
	Pos    string `json:"pos"`
	Name   string `json:"name"`
	Script struct {
		Command string `json:"command"`
	} `json:"script"`
	Interval float64 `json:"interval"`
	Timeout  float64 `json:"timeout"`
	Weight   int     `json:"weight"`
	Reverse  bool    `json:"reverse"`
	Rise     int     `json:"rise"`
	Fall     int     `json:"fall"`
}

type xdVIP struct {
	Address      string `json:"address"`
	Dev          string `json:"dev"`
	Scope        string `json:"scope"`
	PreferredLft uint32 `json:"preferred_lft"`
}

type xdTrack struct {
	Name      string `json:"name"`
	Weight    int    `json:"weight"`
	WeightSet bool   `json:"weight_set"`
	Reverse   bool   `json:"reverse"`
}

type xdInstance struct {
	Name                    string    `json:"name"`
	State                   string    `json:"state"`
	Interface               string    `json:"interface"`
	VRID                    int       `json:"virtual_router_id"`
	Priority                int       `json:"priority"`
	AdvertInt               float64   `json:"advert_int"`
	Version                 int       `json:"version"`
	AuthType                string    `json:"auth_type"`
	AuthPass                string    `json:"auth_pass"`
	VIPs                    []xdVIP   `json:"virtual_ipaddress"`
	ExcludedVIPs            []xdVIP   `json:"virtual_ipaddress_excluded"`
	McastDstIP              string    `json:"mcast_dst_ip"`
	McastSrcIP              string    `json:"mcast_src_ip"`
	UnicastTTL              int       `json:"unicast_ttl"`
	CheckUnicastSrc         bool      `json:"check_unicast_src"`
	UnicastSrcIP            string    `json:"unicast_src_ip"`
	UnicastPeers            []string  `json:"unicast_peer"`
	Preempt                 bool      `json:"preempt"`
	PreemptDelay            float64   `json:"preempt_delay"`
	Accept                  bool      `json:"accept"`
	TrackInterfaces         []xdTrack `json:"track_interface"`
	TrackScripts            []xdTrack `json:"track_script"`
	UseVMAC                 bool      `json:"use_vmac"`
	VMACName                string    `json:"vmac_name"`
	GarpMasterDelay         float64   `json:"garp_master_delay"`
	GarpMasterRepeat        int       `json:"garp_master_repeat"`
	GarpMasterRefresh       float64   `json:"garp_master_refresh"`
	GarpMasterRefreshRepeat int       `json:"garp_master_refresh_repeat"`
	GarpLowerPrioDelay      float64   `json:"garp_lower_prio_delay"`
	GarpLowerPrioRepeat     int       `json:"garp_lower_prio_repeat"`
	DownTimerAdverts        int       `json:"down_timer_adverts"`
	LowerPrioNoAdvert       bool      `json:"lower_prio_no_advert"`
	HigherPrioSendAdvert    bool      `json:"higher_prio_send_advert"`
	SkipCheckAdvAddr        bool      `json:"skip_check_adv_addr"`
	StrictMode              bool      `json:"strict_mode"`
	SyncGroup               string    `json:"sync_group"`
}

type xdChecker struct {
	Pos              string  `json:"pos"`
	Type             string  `json:"type"`
	ConnectIP        string  `json:"connect_ip"`
	ConnectPort      int     `json:"connect_port"`
	ConnectTimeout   float64 `json:"connect_timeout"`
	Retry            int     `json:"retry"`
	DelayBeforeRetry float64 `json:"delay_before_retry"`
	DelayLoop        float64 `json:"delay_loop"`
	Warmup           float64 `json:"warmup"`
	HeloName         string  `json:"helo_name"`
	Alpha            bool    `json:"alpha"`
	DNSType          string  `json:"dns_type"`
	DNSName          string  `json:"dns_name"`
	MiscDynamic      bool    `json:"misc_dynamic"`
	RequireReply     bool    `json:"require_reply"`
	MiscPath         struct {
		Command string `json:"command"`
	} `json:"misc_path"`
	URLs []struct {
		Path        string `json:"path"`
		Digest      string `json:"digest"`
		StatusCodes []struct {
			Lo int `json:"lo"`
			Hi int `json:"hi"`
		} `json:"status_codes"`
	} `json:"url"`
}

// xdTunnel is a server's tunnel options (lb_kind TUN type ... port ...).
type xdTunnel struct {
	Type string `json:"type"`
	Port int    `json:"port"`
	Csum string `json:"csum"`
}

type xdRS struct {
	Alpha     bool        `json:"alpha"`
	Inhibit   bool        `json:"inhibit_on_failure"`
	IP        string      `json:"ip"`
	Port      int         `json:"port"`
	Weight    int         `json:"weight"`
	Method    string      `json:"lb_kind"`
	Tunnel    xdTunnel    `json:"tunnel"`
	DelayLoop float64     `json:"delay_loop"`
	Checkers  []xdChecker `json:"checker"`
}

type xdVS struct {
	Alpha        bool `json:"alpha"`
	Omega        bool `json:"omega"`
	Inhibit      bool `json:"inhibit_on_failure"`
	HASuspend    bool `json:"ha_suspend"`
	SorryInhibit bool `json:"sorry_server_inhibit"`
	Granularity  int  `json:"persistence_granularity"`
	SorryServer  *struct {
		IP     string   `json:"ip"`
		Port   int      `json:"port"`
		Method string   `json:"lb_kind"`
		Tunnel xdTunnel `json:"tunnel"`
	} `json:"sorry_server"`
	IP                 string   `json:"ip"`
	Port               int      `json:"port"`
	FWMark             int      `json:"fwmark"`
	Group              string   `json:"group"`
	DelayLoop          float64  `json:"delay_loop"`
	Scheduler          string   `json:"lb_algo"`
	Method             string   `json:"lb_kind"`
	Tunnel             xdTunnel `json:"tunnel"`
	PersistenceTimeout float64  `json:"persistence_timeout"`
	Protocol           string   `json:"protocol"`
	Quorum             int      `json:"quorum"`
	Hysteresis         int      `json:"hysteresis"`
	RealServers        []xdRS   `json:"real_server"`
}

// fidelityResult is the outcome for one file.
type fidelityResult struct {
	file     string
	kaRC     int
	kaMsgs   []kaMessage
	xd       *xdModel
	values   int
	diffs    []string
	infoNote string
	tracked  map[string]bool // vrrp_script names something tracks
	// envScripts are vrrp_scripts keepalived removed for a reason of this
	// host (no such program, no such default script user).
	envScripts map[string]bool
}

var envScriptRE = regexp.MustCompile(`(?:Unable to set default user for vrrp script (\S+) - removing|Disabling track script (\S+) since not found)`)

// noteEnvScripts records the scripts keepalived removed for host reasons.
func (r *fidelityResult) noteEnvScripts() {
	r.envScripts = map[string]bool{}
	for _, m := range r.kaMsgs {
		if g := envScriptRE.FindStringSubmatch(m.Text); g != nil {
			r.envScripts[g[1]+g[2]] = true
		}
	}
}

func TestKeepalivedFidelity(t *testing.T) {
	RequireKeepalived(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode (runs keepalived in network namespaces)")
	}
	// FIDELITY_DIR points the test at another directory of *.conf files
	// (an operator's own configurations, held-out files).
	dir := "testdata/keepalived"
	if d := os.Getenv("FIDELITY_DIR"); d != "" {
		dir = d
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", dir, err)
	}
	if only := os.Getenv("FIDELITY_ONLY"); only != "" {
		var keep []string
		for _, f := range files {
			if strings.Contains(filepath.Base(f), only) {
				keep = append(keep, f)
			}
		}
		files = keep
	}
	fake, err := buildFakeIPVS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	results := make([]*fidelityResult, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = runFidelity(t, i, f, fake)
		}()
	}
	wg.Wait()
	agree, values := 0, 0
	for _, r := range results {
		values += r.values
		verdict := "agree"
		if len(r.diffs) > 0 {
			verdict = "DIFFER"
		} else {
			agree++
		}
		nw, ne := 0, 0
		if r.xd != nil {
			for _, d := range r.xd.Diagnostics {
				if d.Severity == "error" {
					ne++
				} else {
					nw++
				}
			}
		}
		t.Logf("%-48s keepalived rc %d, %2d message(s) | xdpvip %2d error(s) %2d warning(s) | %3d values | %s%s",
			filepath.Base(r.file), r.kaRC, len(r.kaMsgs), ne, nw, r.values, verdict, r.infoNote)
		for _, d := range r.diffs {
			t.Errorf("%s: %s", filepath.Base(r.file), d)
		}
	}
	t.Logf("keepalived agreement: %d/%d files, %d values compared", agree, len(results), values)
	fmt.Printf("keepalived agreement: %d/%d files, %d values compared\n", agree, len(results), values)
	suiteReport("keepalived agreement: %d/%d files, %d values compared", agree, len(results), values)
}

func runFidelity(t *testing.T, idx int, file, fake string) *fidelityResult {
	r := &fidelityResult{file: file}
	abs, _ := filepath.Abs(file)
	out, err := exec.Command(xdpvipBin, "check-config", "--json", "-i", oracleConfigID, "-f", abs).Output()
	if len(out) == 0 {
		r.diffs = append(r.diffs, fmt.Sprintf("xdpvip check-config --json printed nothing: %v", err))
		return r
	}
	var xd xdModel
	if err := json.Unmarshal(out, &xd); err != nil {
		r.diffs = append(r.diffs, fmt.Sprintf("xdpvip JSON: %v", err))
		return r
	}
	r.xd = &xd
	var extra []string
	if xd.Config != nil {
		for _, in := range xd.Config.Instances {
			extra = append(extra, in.Interface)
			for _, ti := range in.TrackInterfaces {
				extra = append(extra, ti.Name)
			}
		}
		for _, g := range xd.Config.SyncGroups {
			for _, ti := range g.TrackInterfaces {
				extra = append(extra, ti.Name)
			}
		}
	}
	dir := t.TempDir()
	ns, err := newOracleNS(t, fmt.Sprintf("kfid%d-%d", os.Getpid(), idx), configIfaces(readWithIncludes(abs), extra))
	if err != nil {
		r.diffs = append(r.diffs, err.Error())
		return r
	}
	rc, msgs, raw := ns.kaTest(abs, dir)
	if rc == -1 {
		// keepalived 2.2.7 -t kills itself (SIGTERM) after checking a
		// script that runs as another user (notify.c: main_pid !=
		// getppid() in the test process). What it printed before is the
		// configuration's verdict; the daemon's dump below still runs.
		rc = 0
		if len(msgs) > 0 {
			rc = 5
		}
		r.infoNote = " (keepalived -t killed itself after a script user check: verdict from what it printed)"
	}
	r.kaRC, r.kaMsgs = rc, msgs
	r.noteEnvScripts()
	if os.Getenv("FIDELITY_VERBOSE") != "" {
		t.Logf("%s keepalived -t rc %d:\n%s\nxdpvip:\n%s", file, rc, raw, out)
	}
	r.verdict(abs)
	if !xd.Valid || xd.Config == nil || rc != 0 && rc != 5 && rc != 6 {
		return r
	}
	if len(xd.Config.Instances) > 0 {
		lines, err := ns.kaDump(abs, dir, "-P", "------< Interfaces >------", fake)
		if err != nil {
			r.diffs = append(r.diffs, err.Error())
		} else {
			r.compareVRRP(parseVRRPDump(lines))
		}
	}
	if len(xd.Config.VirtualServers) > 0 {
		lines, err := ns.kaDump(abs, dir, "-C", "------< LVS Topology >------", fake)
		if err != nil {
			r.diffs = append(r.diffs, err.Error())
		} else {
			r.compareCheck(parseCheckDump(lines))
		}
	}
	return r
}

// verdict applies the verdict rule.
func (r *fidelityResult) verdict(abs string) {
	xd := r.xd
	diagLines := map[string]bool{}
	var ownWarnings []string
	for _, d := range xd.Diagnostics {
		diagLines[d.Pos] = true
		diagLines[d.Pos+" "+d.Keyword] = true
		// A warning that names xdpvip (a declared difference) or
		// keepalived (the same correction keepalived makes silently, which
		// the value comparison checks) may come where keepalived is silent.
		if d.Severity == "warning" && !strings.Contains(d.Message, "xdpvip") && !strings.Contains(d.Message, "keepalived") {
			ownWarnings = append(ownWarnings, d.Pos+": "+d.Keyword+": "+d.Message)
		}
	}
	switch {
	case r.kaRC == 0:
		if !xd.Valid {
			r.diffs = append(r.diffs, "keepalived accepts silently, xdpvip refuses: "+xdErrors(xd))
		}
		for _, w := range ownWarnings {
			r.diffs = append(r.diffs, "keepalived accepts silently, xdpvip warns: "+w)
		}
	case r.kaRC != 5 && r.kaRC != 6: // 1..4: cannot run (2: missing parameter, 4: fatal)
		if xd.Valid {
			r.diffs = append(r.diffs, fmt.Sprintf("keepalived cannot run (rc %d: %s), xdpvip accepts", r.kaRC, kaText(r.kaMsgs)))
		}
	default: // 5: messages; 6: the same plus a script security message
		var msgs []kaMessage
		ext := extensionLines(abs)
	next:
		for _, m := range r.kaMsgs {
			if envMessage(m.Text) {
				continue
			}
			// keepalived skips xdpvip's own extension (the bgp block and
			// announce) with "Unknown keyword" warnings by design: one file
			// serves both daemons.
			if (m.File == "" || m.File == abs || filepath.Base(m.File) == filepath.Base(abs)) && ext[m.Line] {
				continue
			}
			for sc := range r.envScripts {
				if strings.Contains(m.Text, "track script "+sc+" not found") {
					continue next
				}
			}
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			if !xd.Valid {
				r.diffs = append(r.diffs, "keepalived reports only host-dependent messages, xdpvip refuses: "+xdErrors(xd))
			}
			return
		}
		if len(xd.Diagnostics) == 0 {
			r.diffs = append(r.diffs, "keepalived reports "+kaText(r.kaMsgs)+"; xdpvip reports nothing")
			return
		}
		for _, m := range msgs {
			if m.Line == 0 {
				continue
			}
			f := m.File
			if f == "" {
				f = abs
			}
			if !filepath.IsAbs(f) {
				f = filepath.Join(filepath.Dir(abs), f)
			}
			if !covered(diagLines, f, m.Line) {
				r.diffs = append(r.diffs, fmt.Sprintf("keepalived reports line %d (%s), xdpvip says nothing there", m.Line, m.Text))
			}
		}
	}
}

// extensionLines are the lines of file that belong to xdpvip's keepalived.conf
// extension: a top-level `bgp { … }` block and `announce …` lines.
func extensionLines(file string) map[int]bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	lines := map[int]bool{}
	depth, inBGP := 0, false
	for i, l := range strings.Split(string(b), "\n") {
		if j := strings.IndexAny(l, "#!"); j >= 0 {
			l = l[:j]
		}
		f := strings.Fields(l)
		if depth == 0 && len(f) > 0 && f[0] == "bgp" {
			inBGP = true
		}
		if inBGP || len(f) > 0 && f[0] == "announce" {
			lines[i+1] = true
		}
		depth += strings.Count(l, "{") - strings.Count(l, "}")
		if depth <= 0 {
			depth, inBGP = 0, false
		}
	}
	return lines
}

// covered reports whether xdpvip has a diagnostic on line, or one about a
// whole block enclosing it, on that block's opening line and naming the
// block's keyword (xdpvip reports problems of a whole block, e.g. a block
// it does not support or a block missing a keyword, at the block's keyword;
// keepalived at the line it was reading).
func covered(diagLines map[string]bool, file string, line int) bool {
	if diagLines[fmt.Sprintf("%s:%d", file, line)] {
		return true
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(string(b), "\n")
	for _, open := range enclosingBlocks(file, line) {
		if open < 1 || open > len(lines) {
			continue
		}
		f := strings.Fields(lines[open-1])
		if len(f) > 0 && diagLines[fmt.Sprintf("%s:%d %s", file, open, f[0])] {
			return true
		}
	}
	return false
}

// enclosingBlocks returns the lines opening the blocks that contain line
// (a block whose "}" is on line counts), innermost first. Comments and
// quoted braces are skipped the way keepalived's lexer does.
func enclosingBlocks(file string, line int) []int {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var stack []int
	lastKeywordLine := 0
	for i, l := range strings.Split(string(b), "\n") {
		n := i + 1
		if n > line {
			break
		}
		if j := strings.IndexAny(l, "#!"); j >= 0 {
			l = l[:j]
		}
		inQuote := false
		for _, c := range l {
			switch {
			case c == '"':
				inQuote = !inQuote
			case inQuote:
			case c == '{':
				open := n
				if strings.TrimSpace(l) == "{" {
					open = lastKeywordLine
				}
				stack = append(stack, open)
			case c == '}':
				if len(stack) > 0 && n < line {
					stack = stack[:len(stack)-1]
				}
			}
		}
		if strings.TrimSpace(strings.Trim(strings.TrimSpace(l), "{}")) != "" {
			lastKeywordLine = n
		}
	}
	out := make([]int, 0, len(stack))
	for i := len(stack) - 1; i >= 0; i-- {
		out = append(out, stack[i])
	}
	return out
}

// envMessage reports whether a keepalived message is about this host
// rather than the configuration: a script or user that does not exist
// here (keepalived disables such scripts when it starts).
func envMessage(text string) bool {
	for _, s := range []string{"since not found/accessible", "does not exist", "Unable to access script",
		"Error setting global script uid/gid", "Unable to set default user"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

func xdErrors(xd *xdModel) string {
	var s []string
	for _, d := range xd.Diagnostics {
		if d.Severity == "error" {
			s = append(s, d.Pos+": "+d.Keyword+": "+d.Message)
		}
	}
	return strings.Join(s, "; ")
}

func kaText(msgs []kaMessage) string {
	var s []string
	for _, m := range msgs {
		if m.Line > 0 {
			s = append(s, fmt.Sprintf("line %d: %s", m.Line, m.Text))
		} else {
			s = append(s, m.Text)
		}
	}
	return strings.Join(s, "; ")
}

// declared reports whether xdpvip warns at pos with a message containing
// what: a difference from keepalived that xdpvip declares.
func (r *fidelityResult) declared(pos, what string) bool {
	for _, d := range r.xd.Diagnostics {
		if d.Pos == pos && d.Severity == "warning" && strings.Contains(d.Message, what) {
			return true
		}
	}
	return false
}

// declaredIn is declared for any line inside the block opened at pos.
func (r *fidelityResult) declaredIn(pos, what string) bool {
	i := strings.LastIndex(pos, ":")
	file := pos[:i]
	open, _ := strconv.Atoi(pos[i+1:])
	for _, d := range r.xd.Diagnostics {
		j := strings.LastIndex(d.Pos, ":")
		line, _ := strconv.Atoi(d.Pos[j+1:])
		if d.Pos[:j] != file || d.Severity != "warning" || !strings.Contains(d.Message, what) {
			continue
		}
		for _, b := range enclosingBlocks(file, line) {
			if b == open {
				return true
			}
		}
	}
	return false
}

// cmp compares one value; what names it for the report.
func (r *fidelityResult) cmp(what, ka, xd string) {
	r.values++
	if ka != xd {
		r.diffs = append(r.diffs, fmt.Sprintf("%s: keepalived %q, xdpvip %q", what, ka, xd))
	}
}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}

// secs renders seconds the way keepalived's dump does for whole-second
// fields (truncated).
func secs(f float64) string { return strconv.FormatInt(int64(f+1e-9), 10) }

func addrOnly(s string) string {
	a, _, _ := strings.Cut(s, "/")
	if p, err := netip.ParseAddr(a); err == nil {
		return p.Unmap().String()
	}
	return a
}

func (r *fidelityResult) compareVRRP(d *vrrpDump) {
	cfg := r.xd.Config
	r.tracked = map[string]bool{}
	for _, in := range cfg.Instances {
		for _, t := range in.TrackScripts {
			r.tracked[t.Name] = true
		}
	}
	for _, g := range cfg.SyncGroups {
		for _, t := range g.TrackScripts {
			r.tracked[t.Name] = true
		}
	}
	r.cmp("number of vrrp_instance", strconv.Itoa(len(d.Instances)), strconv.Itoa(len(cfg.Instances)))
	for _, in := range cfg.Instances {
		k := d.Instances[in.Name]
		if k == nil {
			r.diffs = append(r.diffs, fmt.Sprintf("vrrp_instance %s: not in keepalived's dump", in.Name))
			continue
		}
		p := "vrrp_instance " + in.Name + ": "
		r.cmp(p+"version", k.KV["VRRP Version"], strconv.Itoa(in.Version))
		r.cmp(p+"state", k.KV["Wantstate"], in.State)
		ifname, _, _ := strings.Cut(k.KV["Interface"], ",")
		wantIf := in.Interface
		if in.UseVMAC {
			wantIf = in.VMACName
		}
		r.cmp(p+"interface", ifname, wantIf)
		r.cmp(p+"virtual_router_id", k.KV["Virtual Router ID"], strconv.Itoa(in.VRID))
		r.cmp(p+"priority", k.KV["Priority"], strconv.Itoa(in.Priority))
		adv := secs(in.AdvertInt) + " sec"
		if in.Version == 3 {
			adv = strconv.Itoa(int(in.AdvertInt*1000+0.5)) + " milli-sec"
		}
		r.cmp(p+"advert_int", k.KV["Advert interval"], adv)
		r.cmp(p+"accept", k.KV["Accept"], onOff(in.Accept, "enabled", "disabled"))
		r.cmp(p+"preempt", k.KV["Preempt"], onOff(in.Preempt, "enabled", "disabled"))
		pd := ""
		if in.PreemptDelay != 0 {
			pd = strconv.FormatFloat(in.PreemptDelay, 'g', 6, 64) + " secs"
		}
		r.cmp(p+"preempt_delay", k.KV["Preempt delay"], pd)
		auth := "none"
		switch in.AuthType {
		case "PASS":
			auth = "SIMPLE_PASSWORD"
		case "AH":
			auth = "IPSEC_AH"
		}
		if in.Version == 3 && auth == "none" {
			auth = "" // keepalived prints no authentication line for VRRPv3
		}
		r.cmp(p+"auth_type", k.KV["Authentication type"], auth)
		if in.AuthType == "PASS" {
			r.cmp(p+"auth_pass", k.KV["Password"], in.AuthPass)
		}
		r.cmp(p+"garp_master_delay", k.KV["Gratuitous ARP delay"], secs(in.GarpMasterDelay))
		r.cmp(p+"garp_master_repeat", k.KV["Gratuitous ARP repeat"], strconv.Itoa(in.GarpMasterRepeat))
		r.cmp(p+"garp_master_refresh", k.KV["Gratuitous ARP refresh"], secs(in.GarpMasterRefresh))
		r.cmp(p+"garp_master_refresh_repeat", k.KV["Gratuitous ARP refresh repeat"], strconv.Itoa(in.GarpMasterRefreshRepeat))
		r.cmp(p+"garp_lower_prio_delay", k.KV["Gratuitous ARP lower priority delay"], secs(in.GarpLowerPrioDelay))
		r.cmp(p+"garp_lower_prio_repeat", k.KV["Gratuitous ARP lower priority repeat"], strconv.Itoa(in.GarpLowerPrioRepeat))
		r.cmp(p+"down_timer_adverts", k.KV["Down timer adverts"], strconv.Itoa(in.DownTimerAdverts))
		r.cmp(p+"lower_prio_no_advert", k.KV["Send advert after receive lower priority advert"], onOff(in.LowerPrioNoAdvert, "false", "true"))
		r.cmp(p+"higher_prio_send_advert", k.KV["Send advert after receive higher priority advert"], onOff(in.HigherPrioSendAdvert, "true", "false"))
		r.cmp(p+"skip_check_adv_addr", strconv.FormatBool(k.Flags["Skip checking advert IP addresses"]), strconv.FormatBool(in.SkipCheckAdvAddr))
		r.cmp(p+"strict_mode", strconv.FormatBool(k.Flags["Enforcing strict VRRP compliance"]), strconv.FormatBool(in.StrictMode))
		sg := ""
		if in.SyncGroup != "" {
			sg = in.SyncGroup
		}
		r.cmp(p+"sync group", k.KV["Sync group"], sg)
		r.cmp(p+"virtual_ipaddress", vipList(k.Lists, "Virtual IP"), xdVIPList(in.VIPs))
		if !in.UseVMAC {
			r.cmp(p+"virtual_ipaddress prefix, dev, scope", vipDetails(k.Lists), xdVIPDetails(in.VIPs, in.Interface))
		}
		if src, ok := strings.CutSuffix(k.KV["Using src_ip"], " (from configuration)"); ok || in.UnicastSrcIP != "" || in.McastSrcIP != "" {
			want := in.UnicastSrcIP
			if want == "" {
				want = in.McastSrcIP
			}
			r.cmp(p+"unicast_src_ip / mcast_src_ip", src, want)
		}
		if len(in.UnicastPeers) > 0 {
			kc := k.KV["Check unicast src"] == "yes" || k.Flags["Check unicast src : yes"] || cfg.Global.VRRPCheckUnicastSrc
			r.cmp(p+"check_unicast_src", strconv.FormatBool(kc), strconv.FormatBool(in.CheckUnicastSrc))
			ttl := in.UnicastTTL
			if ttl == -1 && !strings.Contains(in.vipFamilyHint(), ":") {
				ttl = 255
			}
			if v, ok := k.KV["Unicast TTL"]; ok {
				r.cmp(p+"unicast_ttl", v, strconv.Itoa(ttl))
			}
		}
		r.cmp(p+"virtual_ipaddress_excluded", firstWords(k.Lists["Virtual IP Excluded"]), xdVIPList(in.ExcludedVIPs))
		var peers []string
		for _, pe := range in.UnicastPeers {
			peers = append(peers, addrOnly(pe))
		}
		r.cmp(p+"unicast_peer", firstWords(k.Lists["Unicast Peer"]), joinSorted(peers))
		if len(in.UnicastPeers) == 0 {
			mc := in.McastDstIP
			if mc == "" {
				mc = cfg.Global.VRRPMcastGroup4
				if strings.Contains(in.vipFamilyHint(), ":") {
					mc = cfg.Global.VRRPMcastGroup6
				}
			}
			mk, _, _ := strings.Cut(k.flagWithPrefix("Multicast address "), ",")
			r.cmp(p+"mcast_dst_ip", mk, mc)
		}
		var ts []string
		for _, s := range in.TrackScripts {
			if !r.scriptHere(s.Name) {
				continue
			}
			w := s.Weight
			if !s.WeightSet {
				w = r.scriptWeight(s.Name)
			}
			ts = append(ts, fmt.Sprintf("%s weight %d%s", s.Name, w, onOff(s.Reverse, " reverse", "")))
		}
		r.cmp(p+"track_script", trackList(k.Lists["Tracked scripts"]), joinSorted(ts))
		var ti []string
		for _, s := range in.TrackInterfaces {
			ti = append(ti, fmt.Sprintf("%s weight %d%s", s.Name, s.Weight, onOff(s.Reverse, " reverse", "")))
		}
		if len(ti) > 0 || len(k.Lists["Tracked interfaces"]) > 0 {
			r.cmp(p+"track_interface", trackList(k.Lists["Tracked interfaces"]), joinSorted(ti))
		}
	}
	// keepalived keeps only the scripts something tracks and that exist
	// on this host (it disables the others when it starts).
	var scripts []xdScript
	for _, s := range cfg.Scripts {
		if r.tracked[s.Name] && r.scriptHere(s.Name) {
			scripts = append(scripts, s)
		}
	}
	r.cmp("number of vrrp_script", strconv.Itoa(len(d.Scripts)), strconv.Itoa(len(scripts)))
	for _, s := range scripts {
		k := d.Scripts[s.Name]
		if k == nil {
			r.diffs = append(r.diffs, fmt.Sprintf("vrrp_script %s: not in keepalived's dump", s.Name))
			continue
		}
		p := "vrrp_script " + s.Name + ": "
		r.cmp(p+"script", normCommand(k.KV["Command"]), normCommand(s.Script.Command))
		if r.declaredIn(s.Pos, "reads whole seconds here") {
			// Declared: a fractional interval or timeout, which keepalived
			// truncates; compared as keepalived reads it.
			r.cmp(p+"interval (declared: whole seconds)", k.KV["Interval"], secs(max(s.Interval, 1))+" sec")
		} else {
			r.cmp(p+"interval", k.KV["Interval"], secs(s.Interval)+" sec")
			kt := k.KV["Timeout"]
			if kt == "0 sec" { // unset: keepalived waits one interval
				kt = k.KV["Interval"]
			}
			r.cmp(p+"timeout", kt, secs(s.Timeout)+" sec")
		}
		r.cmp(p+"weight", k.KV["Weight"], strconv.Itoa(s.Weight)+onOff(s.Reverse, " reverse", ""))
		r.cmp(p+"rise", k.KV["Rise"], strconv.Itoa(s.Rise))
		r.cmp(p+"fall", k.KV["Fall"], strconv.Itoa(s.Fall))
	}
	r.cmp("number of vrrp_sync_group", strconv.Itoa(len(d.Groups)), strconv.Itoa(len(cfg.SyncGroups)))
}

func scriptExists(cmd string) bool {
	if script.IsOpenCheck(cmd) {
		return true // "</path": keepalived runs it through the shell
	}
	f := strings.Fields(strings.ReplaceAll(cmd, "'", ""))
	if len(f) == 0 {
		return false
	}
	_, err := exec.LookPath(f[0])
	return err == nil
}

// normCommand reduces a script command to its words without quotes, and
// the program to its base name (keepalived prints the path it resolved
// through PATH).
func normCommand(c string) string {
	f := strings.Fields(strings.ReplaceAll(c, "'", ""))
	if len(f) > 0 {
		if p, err := exec.LookPath(f[0]); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				f[0] = real
			}
		}
		f[0] = filepath.Base(f[0])
	}
	return strings.Join(f, " ")
}

// vipFamilyHint returns the instance's first address (VIP or peer), to
// choose the multicast group of its family.
func (in xdInstance) vipFamilyHint() string {
	if len(in.VIPs) > 0 {
		return in.VIPs[0].Address
	}
	if in.UnicastSrcIP != "" {
		return in.UnicastSrcIP
	}
	return ""
}

func (o *dumpObj) flagWithPrefix(p string) string {
	for f := range o.Flags {
		if strings.HasPrefix(f, p) {
			return strings.TrimPrefix(f, p)
		}
	}
	return ""
}

// scriptHere reports whether the vrrp_script name's command exists on
// this host.
func (r *fidelityResult) scriptHere(name string) bool {
	for _, s := range r.xd.Config.Scripts {
		if s.Name == name {
			return scriptExists(s.Script.Command) && !r.envScripts[name]
		}
	}
	return false
}

func (r *fidelityResult) scriptWeight(name string) int {
	for _, s := range r.xd.Config.Scripts {
		if s.Name == name {
			return s.Weight
		}
	}
	return 0
}

// vipList finds the "Virtual IP (n)" list and returns its addresses.
func vipList(lists map[string][]string, prefix string) string {
	for k, v := range lists {
		if strings.HasPrefix(k, prefix+" (") {
			return firstWords(v)
		}
	}
	return ""
}

func firstWords(items []string) string {
	var out []string
	for _, it := range items {
		f := strings.Fields(it)
		if len(f) > 0 {
			out = append(out, addrOnly(f[0]))
		}
	}
	return joinSorted(out)
}

func xdVIPList(v []xdVIP) string {
	var out []string
	for _, x := range v {
		out = append(out, addrOnly(x.Address))
	}
	return joinSorted(out)
}

// trackList normalises keepalived's "name, weight W[ reverse]" items.
func trackList(items []string) string {
	var out []string
	for _, it := range items {
		out = append(out, strings.ReplaceAll(it, ",", ""))
	}
	return joinSorted(out)
}

func joinSorted(s []string) string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return strings.Join(s, " | ")
}

// dumpURLs renders a checker's "Checked url" entries of keepalived's dump
// as "url PATH [digest D] status CODES", in order.
func dumpURLs(k *dumpObj) string {
	var out []string
	cur := ""
	inStatus := false
	for _, l := range k.Lines {
		switch {
		case strings.HasPrefix(l, "Checked url = "):
			if cur != "" {
				out = append(out, cur)
			}
			cur, inStatus = "url "+strings.TrimPrefix(l, "Checked url = "), false
		case cur == "":
		case strings.HasPrefix(l, "digest = "):
			cur += " digest " + strings.TrimPrefix(l, "digest = ")
		case l == "HTTP Status Code(s)":
			cur += " status"
			inStatus = true
		case inStatus && l != "" && (l[0] >= '0' && l[0] <= '9'):
			cur += " " + l
		default:
			inStatus = false
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return strings.Join(out, " | ")
}

// vipDetails renders the "Virtual IP (n)" items as "addr[/len] dev IF
// scope S" (and, for IPv6, " lft L": the preferred lifetime, 0 when
// keepalived says "deprecated"), sorted.
func vipDetails(lists map[string][]string) string {
	for k, v := range lists {
		if strings.HasPrefix(k, "Virtual IP (") {
			var out []string
			for _, it := range v {
				f := strings.Fields(it)
				s := f[0]
				for i := 1; i+1 < len(f); i++ {
					if f[i] == "dev" || f[i] == "scope" {
						s += " " + f[i] + " " + f[i+1]
					}
				}
				for i, w := range f {
					switch {
					case w == "deprecated":
						s += " lft 0"
					case w == "preferred_lft" && i+1 < len(f):
						s += " lft " + f[i+1]
					}
				}
				out = append(out, s)
			}
			return joinSorted(out)
		}
	}
	return ""
}

func xdVIPDetails(v []xdVIP, ifname string) string {
	var out []string
	for _, x := range v {
		a := x.Address
		if strings.HasSuffix(a, "/32") || strings.HasSuffix(a, "/128") {
			a, _, _ = strings.Cut(a, "/")
		}
		dev := x.Dev
		if dev == "" {
			dev = ifname
		}
		s := a + " dev " + dev + " scope " + x.Scope
		if strings.Contains(a, ":") {
			if x.PreferredLft == ^uint32(0) {
				s += " lft forever"
			} else {
				s += " lft " + strconv.FormatUint(uint64(x.PreferredLft), 10)
			}
		}
		out = append(out, s)
	}
	return joinSorted(out)
}

// granularity renders a persistence netmask as keepalived prints it.
func granularity(bits int, vip string) string {
	if bits == 0 {
		return ""
	}
	if strings.Contains(vip, ":") {
		return strconv.Itoa(bits)
	}
	m := uint32(0xffffffff) << (32 - bits)
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&255, m>>8&255, m&255)
}

func usecs(f float64) string { return strconv.FormatInt(int64(f*1e6+0.5), 10) + " us" }

func fixed6(f float64) string { return strconv.FormatFloat(f, 'f', 6, 64) }

func hostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("[%s]:%d", ip, port)
}

// kaForwarding is a server's method and tunnel as keepalived 2.2.7's
// dump_forwarding_method prints them: "DR", "TUN, type = IPIP",
// "TUN, type = GUE, port = 6080, checksum", "TUN, type = GRE, no checksum".
func kaForwarding(method string, t xdTunnel) string {
	if method != "TUN" {
		return method
	}
	csum := map[string]string{"nocsum": "no checksum", "csum": "checksum", "remcsum": "remote checksum"}[t.Csum]
	switch t.Type {
	case "ipip":
		return "TUN, type = IPIP"
	case "gue":
		return fmt.Sprintf("TUN, type = GUE, port = %d, %s", t.Port, csum)
	case "gre":
		return "TUN, type = GRE, " + csum
	}
	return "TUN, type = " + t.Type
}

// forwardingLines are the values of a virtual server's "default
// forwarding method = …" and its sorry server's "forwarding method = …"
// lines, in order. keepalived 2.2.7 leaves out the line's prefix for GUE
// and GRE ("forwarding method = TUN, type = GUE, …" where IP-in-IP has
// "default forwarding method = TUN, type = IPIP"), so both keys count.
func forwardingLines(o *dumpObj) []string {
	var out []string
	for _, l := range o.Lines {
		if k, v, ok := strings.Cut(l, " = "); ok && (k == "default forwarding method" || k == "forwarding method") {
			out = append(out, v)
		}
	}
	return out
}

func at(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return ""
}

func (r *fidelityResult) compareCheck(d *checkDump) {
	cfg := r.xd.Config
	r.cmp("number of virtual_server", strconv.Itoa(len(d.VS)), strconv.Itoa(len(cfg.VirtualServers)))
	var checkers []string
	var xdCheckers []xdChecker
	for i, vs := range cfg.VirtualServers {
		var head string
		switch {
		case vs.Group != "":
			head = "VS GROUP = [" + vs.Group + "]:0"
		case vs.FWMark != 0:
			head = fmt.Sprintf("VS FWMARK = %d", vs.FWMark)
		default:
			head = fmt.Sprintf("VS VIP = %s, VPORT = %d", vs.IP, vs.Port)
		}
		p := "virtual_server " + strings.TrimPrefix(head, "VS ") + ": "
		if i >= len(d.VS) {
			continue
		}
		k := d.VS[i]
		r.cmp(p+"key", k.Name, head)
		r.cmp(p+"delay_loop", k.KV["delay_loop"], fixed6(vs.DelayLoop))
		r.cmp(p+"lb_algo", k.KV["lvs_sched"], vs.Scheduler)
		// The virtual server's default method, then the sorry server's.
		fwd := forwardingLines(k)
		r.cmp(p+"lb_kind and tunnel", at(fwd, 0), kaForwarding(vs.Method, vs.Tunnel))
		pt := ""
		if vs.PersistenceTimeout != 0 {
			pt = secs(vs.PersistenceTimeout)
		}
		r.cmp(p+"persistence_timeout", k.KV["persistence timeout"], pt)
		proto := vs.Protocol
		if proto == "" {
			proto = "none"
		}
		r.cmp(p+"protocol", k.KV["protocol"], proto)
		r.cmp(p+"quorum", k.KV["quorum"], fmt.Sprintf("%d, hysteresis = %d", vs.Quorum, vs.Hysteresis))
		r.cmp(p+"alpha", strconv.FormatBool(k.Flags["alpha is ON"]), strconv.FormatBool(vs.Alpha))
		r.cmp(p+"omega", strconv.FormatBool(k.Flags["omega is ON"]), strconv.FormatBool(vs.Omega))
		r.cmp(p+"inhibit_on_failure", strconv.FormatBool(k.Flags["Inhibit on failure is ON"]), strconv.FormatBool(vs.Inhibit))
		r.cmp(p+"ha_suspend", strconv.FormatBool(k.Flags["Using HA suspend"]), strconv.FormatBool(vs.HASuspend))
		if g, ok := k.KV["persistence granularity"]; ok || vs.Granularity != 0 {
			r.cmp(p+"persistence_granularity", g, granularity(vs.Granularity, vs.IP))
		}
		ss := ""
		if vs.SorryServer != nil {
			ss = fmt.Sprintf("[%s]:%s:%d", vs.SorryServer.IP, strings.ToLower(proto), vs.SorryServer.Port)
		}
		kss := k.KV["sorry server"]
		if kss == "" {
			kss = k.KV["sorry server (duplicates rs)"]
		}
		r.cmp(p+"sorry_server", kss, ss)
		if vs.SorryServer != nil {
			r.cmp(p+"sorry_server_lvs_method and tunnel", at(fwd, 1), kaForwarding(vs.SorryServer.Method, vs.SorryServer.Tunnel))
			r.cmp(p+"sorry_server_inhibit", strconv.FormatBool(k.Flags["  Inhibit on failure is ON"]), strconv.FormatBool(vs.SorryInhibit))
		}
		r.cmp(p+"number of real_server", strconv.Itoa(len(k.Kids)), strconv.Itoa(len(vs.RealServers)))
		for j, rs := range vs.RealServers {
			if j >= len(k.Kids) {
				break
			}
			kr := k.Kids[j]
			rp := p + fmt.Sprintf("real_server %s %d: ", rs.IP, rs.Port)
			name, _, _ := strings.Cut(kr.Name, " EFF WEIGHT")
			r.cmp(rp+"address, port, weight", name, fmt.Sprintf("RIP = %s, RPORT = %d, WEIGHT = %d", rs.IP, rs.Port, rs.Weight))
			r.cmp(rp+"lvs_method and tunnel", kr.KV["forwarding method"], kaForwarding(rs.Method, rs.Tunnel))
			r.cmp(rp+"delay_loop", kr.KV["Delay loop"], fixed6(rs.DelayLoop))
			r.cmp(rp+"alpha", strconv.FormatBool(kr.Flags["Alpha is ON"]), strconv.FormatBool(rs.Alpha))
			r.cmp(rp+"inhibit_on_failure", strconv.FormatBool(kr.Flags["Inhibit on failure is ON"]), strconv.FormatBool(rs.Inhibit))
			for _, c := range rs.Checkers {
				if c.Type == "MISC_CHECK" && !scriptExists(c.MiscPath.Command) {
					// keepalived drops a checker whose script is missing
					// when it starts (not a configuration matter).
					r.infoNote = " (MISC_CHECK script absent on this host: not compared)"
					continue
				}
				checkers = append(checkers, rp+string(c.Type))
				xdCheckers = append(xdCheckers, c)
			}
		}
	}
	r.cmp("number of checkers", strconv.Itoa(len(d.Checkers)), strconv.Itoa(len(xdCheckers)))
	for i, c := range xdCheckers {
		if i >= len(d.Checkers) {
			break
		}
		k := d.Checkers[i]
		p := checkers[i] + ": "
		method, _, _ := strings.Cut(k.KV["Keepalive method"], ",")
		r.cmp(p+"type", method, c.Type)
		// Only what keepalived prints for this checker is compared.
		for _, f := range []struct{ key, what, xd string }{
			{"Retries", "retry", strconv.Itoa(c.Retry)},
			{"Delay before retry", "delay_before_retry", usecs(c.DelayBeforeRetry)},
			{"Delay loop", "delay_loop", usecs(c.DelayLoop)},
			{"Warmup", "warmup", usecs(c.Warmup)},
		} {
			if v, ok := k.KV[f.key]; ok {
				r.cmp(p+f.what, v, f.xd)
			}
		}
		if c.Type != "MISC_CHECK" && c.Type != "FILE_CHECK" && c.Type != "BFD_CHECK" {
			dest := hostPort(c.ConnectIP, c.ConnectPort)
			if r.declared(c.Pos, "connects to port 0") {
				// Declared: keepalived checks port 0 here, xdpvip the
				// service's port.
				dest = hostPort(c.ConnectIP, 0)
			}
			r.cmp(p+"connect_ip, connect_port", k.KV["Dest"], dest)
			if r.declared(c.Pos, "connect timeout of 0") {
				// A declared difference: keepalived 2.2.7 gives an
				// SMTP_CHECK host { } without connect_timeout a timeout of
				// 0; xdpvip the checker's.
				r.cmp(p+"connect_timeout (declared: keepalived 0)", k.KV["Timeout"], fixed6(0))
			} else {
				r.cmp(p+"connect_timeout", k.KV["Timeout"], fixed6(c.ConnectTimeout))
			}
		}
		if c.Type == "SMTP_CHECK" {
			r.cmp(p+"helo_name", k.KV["helo"], c.HeloName)
		}
		r.cmp(p+"alpha", k.KV["Alpha"], onOff(c.Alpha, "yes", "no"))
		switch c.Type {
		case "HTTP_GET", "SSL_GET":
			var urls []string
			for _, u := range c.URLs {
				s := "url " + u.Path
				if u.Digest != "" {
					s += " digest " + u.Digest
				}
				s += " status"
				for _, sc := range u.StatusCodes {
					if sc.Lo == sc.Hi {
						s += fmt.Sprintf(" %d", sc.Lo)
					} else {
						s += fmt.Sprintf(" %d-%d", sc.Lo, sc.Hi)
					}
				}
				urls = append(urls, s)
			}
			r.cmp(p+"url path, digest, status_code", dumpURLs(k), strings.Join(urls, " | "))
		case "DNS_CHECK":
			r.cmp(p+"type", k.KV["Type"], c.DNSType)
			if k.KV["Name"] != "" || c.DNSName != "." { // keepalived prints an unset name empty and queries "."
				r.cmp(p+"name", k.KV["Name"], c.DNSName)
			}
		case "MISC_CHECK":
			r.cmp(p+"misc_path", normCommand(k.KV["script"]), normCommand(c.MiscPath.Command))
			r.cmp(p+"misc_dynamic", k.KV["dynamic"], onOff(c.MiscDynamic, "YES", "NO"))
		case "UDP_CHECK":
			r.cmp(p+"require_reply", k.KV["Require reply"], onOff(c.RequireReply, "yes", "no"))
		}
	}
}
