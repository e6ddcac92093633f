package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadBounded loads path within 10 s and maxAlloc bytes.
func loadBounded(t *testing.T, path string, maxAlloc uint64) (*Config, []Diagnostic, error) {
	t.Helper()
	return runBounded(t, 10*time.Second, maxAlloc, func() (*Config, []Diagnostic, error) {
		return LoadWith(path, Options{ConfigID: "host1"})
	})
}

// TestHostileInput: each input once panicked, hung or exhausted memory;
// each must now end quickly with file:line: keyword: reason.
func TestHostileInput(t *testing.T) {
	bigDef := "$BIG=" + strings.Repeat("a ", 30000) + "\n"
	tests := []struct {
		name    string
		src     string
		sev     Severity
		want    []string
		wantErr bool
	}{
		{"random reversed", "global_defs {\n router_id r${_RANDOM 10 5}\n}\n", Error,
			[]string{"main.conf:2: ${_RANDOM}: min 10 exceeds max 5, using 10"}, true},
		{"random beyond 64 bits", "global_defs {\n router_id r${_RANDOM 1 99999999999999999999}\n}\n", Error,
			[]string{"main.conf:2: ${_RANDOM}: 99999999999999999999 is more than 18446744073709551615"}, true},
		{"random three numbers", "global_defs {\n router_id r${_RANDOM 1 2 3}\n}\n", Warning,
			[]string{"main.conf:2: ${_RANDOM}: too many parameters"}, false},
		{"self-multiplying definition", "$A=" + strings.Repeat("${A}", 16000) + "\nx $A\n", Error,
			[]string{"main.conf:2: $: line longer than"}, true},
		{"fan-out of a large multi-line definition", "$M=\\\n" + strings.Repeat(strings.Repeat("m", 60000)+" \\\n", 16) + "end\n" +
			"x" + strings.Repeat(" $M", 20000) + "\n", Error, []string{"main.conf:19: $: line longer than"}, true},
		{"seq times a large definition", bigDef + "~SEQ(i, 65535) $BIG\n", Error,
			[]string{"main.conf:2: a: more than 1048576 words"}, true},
		{"nested seq", "~SEQ(a, 65535) ~SEQ(b, 65535) ~SEQ(c, 65535) x\n", Error,
			[]string{"main.conf:1: line: more than 1048576 configuration lines after expansion"}, true},
		{"seq too long", "~SEQ(a, -9223372036854775808, 1, 9223372036854775807) x\n", Error,
			[]string{"main.conf:1: ~SEQ: more than 65536 values"}, true},
		{"seq step zero", "~SEQ(a, 1, 0, 5) x\n", Error, []string{"main.conf:1: ~SEQ: step 0 does not lead from 1 to 5"}, true},
		{"seq step away", "~SEQ(a, 5, 1, 1) x\n", Error, []string{"main.conf:1: ~SEQ: step 1 does not lead from 5 to 1"}, true},
		{"seqx negative", "~SEQx(a, -3, 3) x\n", Error, []string{"main.conf:1: ~SEQx: only valid for positive numbers"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"main.conf": tt.src})
			_, diags, err := loadBounded(t, filepath.Join(dir, "main.conf"), 1<<30)
			if _, ok := findDiag(diags, tt.sev, tt.want...); !ok {
				t.Errorf("no %s containing %q in:\n%.2000s", tt.sev, tt.want, dumpDiags(diags))
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestRandomBounds: ${_RANDOM} never panics, stays within its bounds and
// covers the whole 64-bit range.
func TestRandomBounds(t *testing.T) {
	tests := []struct {
		params string
		lo, hi uint64
	}{
		{"", 0, 32767},
		{" 5", 5, 32767},
		{" 0 9223372036854775807", 0, 9223372036854775807},
		{" 0 18446744073709551615", 0, 18446744073709551615},
		{" 18446744073709551615 18446744073709551615", 18446744073709551615, 18446744073709551615},
		{" 7  7", 7, 7},
	}
	for _, tt := range tests {
		src := "global_defs {\n router_id ${_RANDOM" + tt.params + "}\n}\n"
		for range 20 {
			cfg, diags, err := Parse("r.conf", []byte(src))
			if err != nil {
				t.Fatalf("%q: %v\n%s", src, err, dumpDiags(diags))
			}
			v, err := strconv.ParseUint(cfg.Global.RouterID, 10, 64)
			if err != nil || v < tt.lo || v > tt.hi {
				t.Fatalf("${_RANDOM%s} gave %q, want a number in [%d, %d]", tt.params, cfg.Global.RouterID, tt.lo, tt.hi)
			}
		}
	}
	// Not a call of _RANDOM at all (keepalived: only digits and spaces,
	// no trailing space): left as written.
	for _, s := range []string{"${_RANDOM -1 5}", "${_RANDOM 5 }", "${_RANDOM x}"} {
		cfg, _, err := Parse("r.conf", []byte("global_defs {\n router_id "+s+"\n}\n"))
		if err != nil || cfg.Global.RouterID != s {
			t.Errorf("%s gave router_id %q, err %v; want it unchanged", s, cfg.Global.RouterID, err)
		}
	}
}

// TestSeqEdges: ~SEQ counts as keepalived's add_seq does, up to the ends
// of the 64-bit range without wrapping.
func TestSeqEdges(t *testing.T) {
	tests := []struct {
		seq  string
		want string
	}{
		{"~SEQ(N, 3)", "s1 s2 s3"},
		{"~SEQ(N, 0)", "s1 s0"},
		{"~SEQ(N, -2)", "s-1 s-2"},
		{"~SEQ(N, 3, 1)", "s3 s2 s1"},
		{"~SEQ(N, 10, -4, 1)", "s10 s6 s2"},
		{"~SEQx(N, 9, 11)", "s9 sa sb"},
		{"~SEQ(N, 9223372036854775800, 100, 9223372036854775807)", "s9223372036854775800"},
		{"~SEQ(N, 9223372036854775806, 9223372036854775807)", "s9223372036854775806 s9223372036854775807"},
		{"~SEQ(N, -9223372036854775807, -9223372036854775808)", "s-9223372036854775807 s-9223372036854775808"},
	}
	for _, tt := range tests {
		src := tt.seq + " vrrp_script s${N} { script /bin/true }\n"
		cfg, diags, err := Parse("seq.conf", []byte(src))
		if err != nil || hasErrorDiag(diags) {
			t.Errorf("%s: %v\n%s", tt.seq, err, dumpDiags(diags))
			continue
		}
		var names []string
		for _, s := range cfg.Scripts {
			names = append(names, s.Name)
		}
		if got := strings.Join(names, " "); got != tt.want {
			t.Errorf("%s: scripts %q, want %q", tt.seq, got, tt.want)
		}
	}
}

// TestNonRegularFiles: a device, a FIFO, a directory or an executable is
// refused without being read, as the main file (an error) or an include
// (a warning for include, an error for the checking variants, as in
// keepalived), and a FIFO never blocks.
func TestNonRegularFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{"sub/x.conf": "", "ok.conf": "global_defs {\n}\n"})
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "exe.conf")
	if err := os.WriteFile(exe, []byte("global_defs {\n}\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(filepath.Join(dir, "ok.conf"), link); err != nil {
		t.Fatal(err)
	}
	n := 0
	main := func(src string) string {
		n++
		p := filepath.Join(dir, "main"+strconv.Itoa(n)+".conf")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		sev     Severity
		want    []string
		wantErr bool
	}{
		{"include /dev/zero", main("include /dev/zero\n"), Warning,
			[]string{".conf:1: include: cannot read /dev/zero: a character device, not a regular file"}, false},
		{"includer /dev/zero", main("includer /dev/zero\n"), Error,
			[]string{".conf:1: includer: cannot read /dev/zero: a character device"}, true},
		{"include fifo", main("include fifo\n"), Warning, []string{".conf:1: include: cannot read", "a FIFO, not a regular file"}, false},
		{"includem fifo", main("includem fifo\n"), Error, []string{".conf:1: includem: cannot read", "a FIFO"}, true},
		{"include directory", main("include sub\n"), Warning, []string{".conf:1: include: cannot read", "a directory"}, false},
		{"include executable", main("includea exe.conf\n"), Error, []string{".conf:1: includea: cannot read", "executable"}, true},
		{"include a link to a regular file", main("includer link.conf\n"), Warning, []string{"nothing expected"}, false},
		{"main file /dev/zero", "/dev/zero", Error, []string{"/dev/zero:0: file: a character device, not a regular file"}, true},
		{"main file fifo", fifo, Error, []string{"fifo:0: file: a FIFO, not a regular file"}, true},
		{"main file directory", dir, Error, []string{":0: file: a directory, not a regular file"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags, err := loadBounded(t, tt.path, 64<<20)
			if _, ok := findDiag(diags, tt.sev, tt.want...); !ok && tt.want[0] != "nothing expected" {
				t.Errorf("no %s containing %q in:\n%s", tt.sev, tt.want, dumpDiags(diags))
			}
			if tt.want[0] == "nothing expected" && len(diags) > 0 {
				t.Errorf("diagnostics for a link to a regular file:\n%s", dumpDiags(diags))
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestFileTooLarge: a file past maxFileSize is refused after reading at
// most one byte more than the limit.
func TestFileTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.conf")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: reads back as NUL bytes, but the size check comes first.
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	main := filepath.Join(dir, "main.conf")
	if err := os.WriteFile(main, []byte("include big.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags, _ := loadBounded(t, main, 256<<20)
	if _, ok := findDiag(diags, Warning, ".conf:1: include: cannot read", "larger than the 16777216 bytes"); !ok {
		t.Errorf("no warning about the size in:\n%s", dumpDiags(diags))
	}
}

// hasErrorDiag reports whether diags hold an error (warnings, e.g. about
// script security, do not change what ~SEQ expands to).
func hasErrorDiag(diags []Diagnostic) bool {
	for _, d := range diags {
		if d.Severity == Error {
			return true
		}
	}
	return false
}
