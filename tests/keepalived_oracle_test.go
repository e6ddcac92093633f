package tests

// Helpers of the keepalived differential test (keepalived_fidelity_test.go):
// run keepalived 2.2.7 as an oracle on one configuration file inside a
// network namespace holding the interfaces the file names, and read back
// what it reported (-t) and what it parsed (the -d dump of the VRRP and
// checker processes).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kaMessage is one line keepalived -t wrote: the file and line it names
// (empty/0 when none) and the text.
type kaMessage struct {
	File string
	Line int
	Text string
}

var kaLineRE = regexp.MustCompile(`^\((?:(.*): )?Line (\d+)\) (.*)$`)

// parseKAMessages splits keepalived's stderr into messages.
func parseKAMessages(stderr string) []kaMessage {
	var out []kaMessage
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		m := kaLineRE.FindStringSubmatch(l)
		if m == nil {
			out = append(out, kaMessage{Text: l})
			continue
		}
		var n int
		fmt.Sscan(m[2], &n)
		out = append(out, kaMessage{File: m[1], Line: n, Text: m[3]})
	}
	return out
}

// oracleNS is a network namespace with veth interfaces of the given
// names (this kernel has no dummy, 802.1Q or bond link types).
type oracleNS struct {
	name string
}

func newOracleNS(t testing.TB, name string, ifaces []string) (*oracleNS, error) {
	ns := &oracleNS{name: name}
	exec.Command("ip", "netns", "del", name).Run()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip := func(args ...string) error {
		out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	for i, ifn := range ifaces {
		if ifn == "lo" {
			continue
		}
		peer := fmt.Sprintf("kp%d", i)
		if err := ip("link", "add", ifn, "type", "veth", "peer", "name", peer); err != nil {
			return nil, err
		}
		for _, l := range []string{ifn, peer} {
			if err := ip("link", "set", l, "up"); err != nil {
				return nil, err
			}
		}
		if err := ip("addr", "add", fmt.Sprintf("10.251.%d.1/24", i), "dev", ifn); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

func (ns *oracleNS) command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	argv := append([]string{"netns", "exec", ns.name, "env"}, env...)
	argv = append(argv, name)
	argv = append(argv, args...)
	return exec.CommandContext(ctx, "ip", argv...)
}

// kaTest runs keepalived -t -f file: the exit code and the messages.
func (ns *oracleNS) kaTest(file, dir string) (int, []kaMessage, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := ns.command(ctx, nil, keepalivedBin, "-t", "-f", file,
		"-p", filepath.Join(dir, "t.pid"), "-r", filepath.Join(dir, "t-vrrp.pid"), "-c", filepath.Join(dir, "t-chk.pid"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	err := cmd.Run()
	rc := 0
	if ee, ok := err.(*exec.ExitError); ok {
		rc = ee.ExitCode()
	} else if err != nil {
		rc = -1
	}
	return rc, parseKAMessages(stderr.String()), stderr.String()
}

// lockedBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// kaDump runs keepalived in the foreground with its configuration dump
// (-d) for one subsystem ("-P" VRRP, "-C" checkers) until the dump has
// been written (the line marker seen and the log quiet for a moment), then
// stops it and returns the log without timestamps. The checker process
// needs IPVS, which this kernel lacks: fakeIPVS is an LD_PRELOAD library
// that answers keepalived's IPVS socket options with success.
func (ns *oracleNS) kaDump(file, dir, subsystem, marker, fakeIPVS string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var env []string
	if fakeIPVS != "" {
		env = append(env, "LD_PRELOAD="+fakeIPVS)
	}
	tag := strings.TrimPrefix(subsystem, "-")
	cmd := ns.command(ctx, env, keepalivedBin, subsystem, "-n", "-l", "-D", "-d", "-G", "-f", file,
		"-p", filepath.Join(dir, tag+".pid"), "-r", filepath.Join(dir, tag+"-vrrp.pid"), "-c", filepath.Join(dir, tag+"-chk.pid"))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(15 * time.Second)
	lastLen, quietSince := -1, time.Now()
	exited := false
	for time.Now().Before(deadline) {
		select {
		case <-done:
			exited = true
		case <-time.After(50 * time.Millisecond):
		}
		s := out.String()
		if len(s) != lastLen {
			lastLen, quietSince = len(s), time.Now()
		}
		if exited || strings.Contains(s, marker) && time.Since(quietSince) > 400*time.Millisecond {
			break
		}
	}
	if !exited {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	lines := stripTimestamps(out.String())
	if !strings.Contains(out.String(), marker) {
		return lines, fmt.Errorf("keepalived %s: no %q in its log:\n%s", subsystem, marker, strings.Join(lines, "\n"))
	}
	return lines, nil
}

var kaTimestampRE = regexp.MustCompile(`^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: `)

func stripTimestamps(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, kaTimestampRE.ReplaceAllString(sc.Text(), ""))
	}
	return out
}

// dumpObj is one object of a keepalived dump (an instance, a script, a
// virtual or real server, a checker): its header value, its "key = value"
// lines (first one wins) and its lists (a "Name :" line followed by more
// indented items).
type dumpObj struct {
	Name  string
	KV    map[string]string
	All   map[string][]string // every value of a key, in order
	Lists map[string][]string
	Flags map[string]bool // lines without " = " (e.g. "Enforcing strict VRRP compliance")
	Kids  []*dumpObj      // real servers of a virtual server
}

func newDumpObj(name string) *dumpObj {
	return &dumpObj{Name: name, KV: map[string]string{}, All: map[string][]string{}, Lists: map[string][]string{}, Flags: map[string]bool{}}
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

// add records one body line of obj; list is the open list (if any).
func (o *dumpObj) add(l string, list *string, listIndent *int) {
	ind := indentOf(l)
	t := strings.TrimSpace(l)
	if *list != "" && ind > *listIndent {
		o.Lists[*list] = append(o.Lists[*list], t)
		return
	}
	*list = ""
	if strings.HasSuffix(t, ":") {
		*list = strings.TrimSpace(strings.TrimSuffix(t, ":"))
		*listIndent = ind
		o.Lists[*list] = o.Lists[*list][:0:0]
		return
	}
	if k, v, ok := strings.Cut(t, " = "); ok {
		if _, seen := o.KV[k]; !seen {
			o.KV[k] = v
		}
		o.All[k] = append(o.All[k], v)
		return
	}
	o.Flags[t] = true
}

// vrrpDump is what keepalived's VRRP process parsed.
type vrrpDump struct {
	Instances map[string]*dumpObj
	Scripts   map[string]*dumpObj
	Groups    map[string]*dumpObj
}

// parseVRRPDump reads the "VRRP Topology", "VRRP Scripts" and "VRRP Sync
// groups" parts of a dump.
func parseVRRPDump(lines []string) *vrrpDump {
	d := &vrrpDump{Instances: map[string]*dumpObj{}, Scripts: map[string]*dumpObj{}, Groups: map[string]*dumpObj{}}
	var cur *dumpObj
	var list string
	var listIndent int
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, " VRRP Instance = "):
			cur = newDumpObj(strings.TrimPrefix(l, " VRRP Instance = "))
			d.Instances[cur.Name] = cur
		case strings.HasPrefix(l, " VRRP Script = "):
			cur = newDumpObj(strings.TrimPrefix(l, " VRRP Script = "))
			d.Scripts[cur.Name] = cur
		case strings.HasPrefix(l, " VRRP Sync Group = "):
			name, _, _ := strings.Cut(strings.TrimPrefix(l, " VRRP Sync Group = "), ",")
			cur = newDumpObj(name)
			d.Groups[cur.Name] = cur
		case cur != nil && indentOf(l) >= 3 && t != "":
			cur.add(l, &list, &listIndent)
			continue
		default:
			cur = nil
		}
		list = ""
	}
	return d
}

// checkDump is what keepalived's checker process parsed.
type checkDump struct {
	VS       []*dumpObj // Kids: real servers
	Checkers []*dumpObj // Name: "[vs]:proto:port -> [rs]:proto:port"
}

func parseCheckDump(lines []string) *checkDump {
	d := &checkDump{}
	var cur, vs *dumpObj
	var list string
	var listIndent int
	inCheckers, inVSG := false, false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "------< Health checkers >------"):
			inCheckers, inVSG, cur = true, false, nil
		case strings.HasPrefix(l, "------<"):
			inCheckers, inVSG, cur = false, false, nil
		case l == " ------< Virtual server group >------":
			inVSG, cur = true, nil
		case l == " ------< Virtual server >------":
			inVSG, cur = false, nil
		case inVSG:
		case !inCheckers && (strings.HasPrefix(l, " VS VIP = ") || strings.HasPrefix(l, " VS FWMARK = ") || strings.HasPrefix(l, " VS GROUP = ")):
			vs = newDumpObj(t)
			cur = vs
			d.VS = append(d.VS, vs)
		case !inCheckers && vs != nil && strings.HasPrefix(l, "   RIP = "):
			cur = newDumpObj(t)
			vs.Kids = append(vs.Kids, cur)
		case !inCheckers && l == "   ------< Real server >------":
		case inCheckers && indentOf(l) == 1 && strings.Contains(l, " -> "):
			cur = newDumpObj(t)
			d.Checkers = append(d.Checkers, cur)
		case cur != nil && indentOf(l) >= 3 && t != "":
			cur.add(l, &list, &listIndent)
			continue
		default:
			if indentOf(l) < 1 {
				cur = nil
			}
		}
		list = ""
	}
	return d
}

// configIfaces returns the interface names a configuration names: the
// interface, dev, default_interface, bind_if and lvs_sync_daemon_interface
// words of its text (and its includes), plus extra (e.g. track_interface
// entries from the parsed model), plus eth0 (keepalived's default
// interface).
func configIfaces(text string, extra []string) []string {
	set := map[string]bool{"eth0": true}
	re := regexp.MustCompile(`(?m)(?:^|\s)(?:interface|dev|default_interface|bind_if|lvs_sync_daemon_interface|vrrp_garp_extra_if)\s+([A-Za-z][\w.@-]*)`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		set[m[1]] = true
	}
	for _, e := range extra {
		set[e] = true
	}
	var out []string
	for n := range set {
		if len(n) <= 15 && !strings.HasPrefix(n, "vrrp.") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// buildFakeIPVS compiles tests/testdata/fakeipvs/fakeipvs.c into dir.
func buildFakeIPVS(dir string) (string, error) {
	so := filepath.Join(dir, "fakeipvs.so")
	cc := "cc"
	if _, err := exec.LookPath(cc); err != nil {
		cc = "clang"
	}
	out, err := exec.Command(cc, "-shared", "-fPIC", "-O2", "-o", so, "testdata/fakeipvs/fakeipvs.c", "-ldl").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s fakeipvs.c: %v: %s", cc, err, out)
	}
	return so, nil
}

// readWithIncludes returns a file's text and that of the files it
// includes (one level of globs relative to its directory), for
// configIfaces.
func readWithIncludes(file string) string {
	b, _ := os.ReadFile(file)
	text := string(b)
	re := regexp.MustCompile(`(?m)^\s*include\s+(\S+)`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		pat := m[1]
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(filepath.Dir(file), pat)
		}
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			if inc, err := os.ReadFile(f); err == nil {
				text += "\n" + string(inc)
			}
		}
	}
	return text
}
