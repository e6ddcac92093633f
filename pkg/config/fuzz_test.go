package config

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fuzzDir is the directory the fuzzed configuration lives in. Its
// includes find regular files (one of them the second fuzz input), and
// what a broken or hostile host offers a glob: a FIFO, a link to
// /dev/zero, a directory and an executable, all matched by conf.d/*.
type fuzzDir struct{ dir string }

func newFuzzDir(f *testing.F) *fuzzDir {
	dir := f.TempDir()
	files := map[string]string{
		"conf.d/10-script.conf": "vrrp_script chk {\n script \"${_PWD}/chk.sh\"\n interval 2\n}\n",
		"conf.d/05-defs.conf":   "$NET=10.1.0\n$VIP=${NET}.1/24\n$DEV=eth0\n",
		"other/x.conf":          "$X=x\n",
		"other/y.conf":          "@fuzz $Y=fuzz\n@^fuzz $Y=other\n",
		"loop.conf":             "include loop.conf\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "exec.conf"), []byte("global_defs {\n}\n"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "conf.d/40-fifo.conf"), 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "conf.d/50-zero.conf")); err != nil {
		f.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "conf.d/60-dir.conf"), 0o755); err != nil {
		f.Fatal(err)
	}
	return &fuzzDir{dir: dir}
}

// inside reports whether p names something in the fuzz directory, so a
// fuzzed "include /*/*" never walks or reads the host's files.
func (fd *fuzzDir) inside(p string) bool {
	return strings.HasPrefix(filepath.Clean(p)+"/", fd.dir+"/")
}

// options reads files as the daemon does, confined to the directory.
func (fd *fuzzDir) options() Options {
	return Options{
		ConfigID: "fuzz",
		ReadFile: func(name string) ([]byte, error) {
			if !fd.inside(name) {
				return nil, os.ErrNotExist
			}
			return readConfigFile(name)
		},
		Glob: func(pattern string) ([]string, error) {
			if !fd.inside(pattern) {
				return nil, nil
			}
			return filepath.Glob(pattern)
		},
	}
}

// fuzzSeeds exercise every feature of the lexer; each pair is the main
// file and conf.d/20-fuzz.conf.
var fuzzSeeds = [][2]string{
	// $NAME definitions, nested, multi-line, redefined, undefined.
	{"$A=10.0.0\n$B=${A}.1\n$C=$B/24\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  $C\n  ${B}2 dev eth0\n }\n}\n$A=9\nnotify \"$NOPE ${NOPE}\"\n", ""},
	{"$BLK= \\\n interface eth0 \\\n virtual_router_id 7 \\\n priority 150\nvrrp_instance V {\n $BLK\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n", ""},
	{"$A=${A}${A}\nx $A\n~SEQ(N,1,100000) ~SEQ(M,1,100000) a\n", ""},
	// Predefined names and ${_RANDOM} with 0, 1, 2 and 3 parameters.
	{"global_defs {\n router_id r${_RANDOM}-${_RANDOM 5}-${_RANDOM 1 100}-${_RANDOM 0 65535 9}\n}\na ${_PWD} ${_INSTANCE} ${_HASH}${_BANG} $_RANDOM\n", ""},
	// ~SEQ, ~SEQx, ~LST, with definitions in their parameters.
	{"$END=4\n~SEQ(N, 3) vrrp_script s$N { script /bin/true }\n~SEQ(M, 1, 2, $END) a $M\n~SEQx(X, 0xa, 0xf) b ${X}\n~SEQ(R, 5, 1) c $R\n~SEQ(Z, -3) d $Z\n", ""},
	{"~LST({A, B}, {1,2},{3,4}) x ${A}.${B}\n~LST(V, a, b, c) ~SEQ(I, 2) y $V$I\n", ""},
	// @id conditionals, directly and through a definition.
	{"@fuzz global_defs {\n router_id yes\n}\n@^fuzz global_defs {\n router_id no\n}\n$IF=@fuzz\n$IF vrrp_script x { script /bin/true }\n@other @fuzz z\n", ""},
	// include and its variants with globs, braces, a cycle, a checked
	// executable, and conf.d/* reaching the FIFO, /dev/zero and the
	// directory; the second input is included by the first glob.
	{"include conf.d/*.conf\ninclude other/{x,y}.conf\nincluder loop.conf\nincludea exec.conf\nincludem conf.d/*.none\nincludew other/?.conf\nglobal_defs {\n router_id $X$Y\n}\n",
		"$LOCAL=${NET}.7\nvrrp_instance I {\n interface $DEV\n virtual_router_id 9\n virtual_ipaddress {\n  $VIP\n  $LOCAL\n }\n}\n"},
	{"include \"conf.d/20-fuzz.conf\"\n", "~SEQ(K, 2) include other/x.conf\ninclude ../loop.conf\n$Q=\"quoted # not a comment\"\nnotify_master $Q\n"},
	// Quotes, escapes, comments, braces on their own lines, CRLF.
	{"vrrp_instance V\n{\r\n interface eth0 # c\n ! c\n notify \"/bin/x \\\"a b\\\" \\x41\\101\" 'y'\n}\n", ""},
	// TUN tunnel options: every type and checksum, repeats, a definition
	// as the options, errors (missing words, bad port, wrong checksum) at
	// the virtual, real and sorry server, in a definition and an include.
	{"$TUN=TUN type gue port 6080\nvirtual_server 10.0.0.1 80 {\n lb_kind $TUN csum\n sorry_server 10.0.0.9 80\n sorry_server_lvs_method TUN type gre remcsum\n real_server 2001:db8::1 80 {\n  lvs_method TUN type\n }\n real_server 10.0.0.2 80 {\n  lvs_method TUN type gue port 65536 port\n }\n real_server 10.0.0.3 80 {\n  lvs_method DR type ipip csum nocsum remcsum port 0x10\n }\n lb_kind TUN type ipip type gre type gue port 1 port 65535\n}\ninclude conf.d/20-fuzz.conf\n",
		"virtual_server fwmark 5 {\n lvs_method TUN port\n real_server 10.0.0.4 {\n  lvs_method TUN csum \"\" type\n }\n}\n"},
}

// FuzzParse: no input may panic, take more than 5 s, allocate more than
// 1 GiB (the largest inputs the limits let through take 0.25 s and
// 0.5 GiB) or produce an unbounded number of diagnostics; the error agrees with the diagnostics.
// The first input is the main file, the second an included one.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/*.conf", "testdata/conf.d/*.conf", "../../examples/*.conf"} {
		files, _ := filepath.Glob(dir)
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err == nil {
				f.Add(src, []byte(nil))
			}
		}
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	fd := newFuzzDir(f)
	opts := fd.options()
	main := filepath.Join(fd.dir, "main.conf")
	f.Fuzz(func(t *testing.T, src, inc []byte) {
		if err := os.WriteFile(filepath.Join(fd.dir, "conf.d/20-fuzz.conf"), inc, 0o644); err != nil {
			t.Fatal(err)
		}
		parseChecked(t, main, src, opts)
	})
}

// parseChecked parses src and fails on what FuzzParse forbids.
func parseChecked(t *testing.T, name string, src []byte, opts Options) *Config {
	t.Helper()
	// The worst inputs the limits let through take 0.25 s and 0.5 GiB.
	cfg, diags, err := runBounded(t, 5*time.Second, 1<<30, func() (*Config, []Diagnostic, error) {
		return ParseWith(name, src, opts)
	})
	if len(diags) > maxDiagnostics+1 {
		t.Fatalf("%d diagnostics", len(diags))
	}
	hasErr := false
	for _, d := range diags {
		if d.Severity == Error {
			hasErr = true
		}
		if d.Keyword == "" && d.Line > 0 {
			t.Fatalf("diagnostic without keyword: %v", d)
		}
	}
	if hasErr != (err != nil) {
		t.Fatalf("err %v but Error diagnostics %v", err, hasErr)
	}
	if cfg == nil {
		t.Fatal("nil config")
	}
	return cfg
}

// FuzzExpansion builds ${_RANDOM}, ~SEQ and definition fan-out from typed
// parts, so the numbers and repeat counts reach them directly (a
// byte-level mutation rarely writes a 19-digit number). The mutator moves
// an integer by at most 100 a step, so the numbers are also shifted left
// by shift%64 bits: that is how they reach the ends of the 64-bit range.
// The checks of FuzzParse, plus ${_RANDOM} within its bounds and ~SEQ
// giving exactly the values from start to end.
func FuzzExpansion(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint64(0), uint64(32767), int64(1), int64(1), int64(3), uint16(2), "a")
	f.Add(uint8(1), uint8(0), uint64(5), uint64(1), int64(10), int64(-4), int64(1), uint16(1), "b $N")
	f.Add(uint8(2), uint8(0), uint64(0), uint64(0), int64(9), int64(1), int64(15), uint16(3), "${A}")
	f.Add(uint8(3), uint8(0), uint64(0), uint64(0), int64(0), int64(0), int64(100), uint16(50), "w x")
	f.Fuzz(func(t *testing.T, form, shift uint8, lo, hi uint64, start, step, end int64, fan uint16, body string) {
		if strings.ContainsAny(body, "\n\r\\") {
			return // one line of plain words: the structure is the point here
		}
		sh := shift % 64
		lo, hi, start, step, end = lo<<sh, hi<<sh, start<<sh, step<<sh, end<<sh
		var src string
		switch form % 5 {
		case 0:
			src = fmt.Sprintf("global_defs {\n router_id ${_RANDOM %d %d}\n}\n", lo, hi)
		case 1:
			src = fmt.Sprintf("~SEQ(N, %d, %d, %d) vrrp_script s$N { script /bin/true }\n", start, step, end)
		case 2:
			src = fmt.Sprintf("~SEQx(N, %d, %d) vrrp_script s$N { script /bin/true }\n", start, end)
		case 3:
			src = "$A=" + strings.Repeat("${A}"+body, int(fan)) + "\nx $A\n"
		case 4:
			src = "$B=" + strings.Repeat(body+" ", int(fan)) + fmt.Sprintf("\n~SEQ(i, %d) $B\n", end)
		}
		cfg := parseChecked(t, "exp.conf", []byte(src), Options{ConfigID: "fuzz"})
		switch form % 5 {
		case 0:
			v, err := strconv.ParseUint(cfg.Global.RouterID, 10, 64)
			if err != nil || v < lo || (lo <= hi && v > hi) || (lo > hi && v != lo) {
				t.Fatalf("${_RANDOM %d %d} gave %q", lo, hi, cfg.Global.RouterID)
			}
		case 1:
			if n, ok := seqWant(start, step, end); ok && len(cfg.Scripts) != n {
				t.Fatalf("~SEQ(N, %d, %d, %d) gave %d values, want %d", start, step, end, len(cfg.Scripts), n)
			}
		}
	})
}

// seqWant counts ~SEQ(N, start, step, end) with big numbers, as the
// reference for seqCount; ok is false where keepalived refuses it or the
// count is past maxSeqValues.
func seqWant(start, step, end int64) (int, bool) {
	if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
		return 0, false
	}
	d := new(big.Int).Sub(big.NewInt(end), big.NewInt(start))
	d.Quo(d, big.NewInt(step))
	if !d.IsInt64() || d.Int64() >= maxSeqValues {
		return 0, false
	}
	return int(d.Int64()) + 1, true
}

// FuzzTokenize: the tokenizer never panics and never yields a word
// containing an unquoted blank.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{`a "b c" 'd' {e}`, `"\x41\101\cA\q`, "${X} $Y {", "a\"b c\"d", "${_RANDOM 1 9}x{", `"unterminated \"`, "~SEQ(N, 3) a{b}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, _ := tokenize(s, Pos{"t", 1})
		for _, tk := range toks {
			if !tk.quoted && strings.ContainsAny(tk.text, " \t") && !strings.Contains(tk.text, "${") {
				t.Fatalf("unquoted token %q has a blank", tk.text)
			}
		}
	})
}

// runBounded runs parse and fails t if it takes longer than limit or
// allocates more than maxAlloc bytes: a hang or a memory blow-up is
// reported as such instead of wedging or killing the test binary.
func runBounded(t *testing.T, limit time.Duration, maxAlloc uint64, parse func() (*Config, []Diagnostic, error)) (*Config, []Diagnostic, error) {
	t.Helper()
	type result struct {
		cfg   *Config
		diags []Diagnostic
		err   error
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan result, 1)
	go func() {
		cfg, diags, err := parse()
		done <- result{cfg, diags, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(limit):
		t.Fatalf("parsing did not finish in %s", limit)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > maxAlloc {
		t.Fatalf("parsing allocated %d MiB, more than %d MiB", got>>20, maxAlloc>>20)
	}
	return r.cfg, r.diags, r.err
}
