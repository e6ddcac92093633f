package script

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		line string
		want []string
		err  error
	}{
		{line: "/bin/true", want: []string{"/bin/true"}},
		{line: "  /x.sh   a\tb  ", want: []string{"/x.sh", "a", "b"}},
		{line: `/x.sh 'a b' c`, want: []string{"/x.sh", "a b", "c"}},
		{line: `/x.sh "a b" c`, want: []string{"/x.sh", "a b", "c"}},
		{line: `abcd" efg h jkl "mnop`, want: []string{"abcd efg h jkl mnop"}},
		{line: `abcd "efg h jkl" mnop`, want: []string{"abcd", "efg h jkl", "mnop"}},
		{line: `/x.sh '' b`, want: []string{"/x.sh", "", "b"}},
		{line: `/x.sh a\ b`, want: []string{"/x.sh", "a b"}},
		{line: `/x.sh "q\"uote" 'back\slash'`, want: []string{"/x.sh", `q"uote`, `back\slash`}},
		{line: `/x.sh "a\b"`, want: []string{"/x.sh", `a\b`}},
		{line: "", err: ErrEmpty},
		{line: "   \t ", err: ErrEmpty},
		{line: `/x.sh 'open`, err: ErrUnterminatedQuote},
		{line: `/x.sh "open`, err: ErrUnterminatedQuote},
		{line: `/x.sh a\`, err: ErrTrailingBackslash},
	}
	for _, tt := range tests {
		got, err := Split(tt.line)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Split(%q) err = %v, want %v", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"/bin/true", `a 'b c' "d\"e" f\ g`, `'`, `\`, `""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args, err := Split(line)
		if err != nil {
			return
		}
		if len(args) == 0 {
			t.Fatalf("Split(%q) returned no words and no error", line)
		}
		// Quoting every word with single quotes (escaping embedded ones
		// outside quotes) must give back the same argv.
		var b strings.Builder
		for i, a := range args {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
		}
		again, err := Split(b.String())
		if err != nil || !reflect.DeepEqual(again, args) {
			t.Fatalf("round trip of %q: %q -> %q, %v", line, args, again, err)
		}
	})
}

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunOpenCheckFails: "</path" of a file that does not open fails (the
// shell's exit code, non-zero), as with keepalived's system().
func TestRunOpenCheckFails(t *testing.T) {
	res, err := Run(context.Background(), Command{Line: "< " + filepath.Join(t.TempDir(), "nope"), Timeout: 5 * time.Second})
	if err != nil || res.ExitCode == 0 {
		t.Fatalf("exit %d, err %v; want a non-zero exit", res.ExitCode, err)
	}
	if !IsOpenCheck(" < /dev/tcp/127.0.0.1/80") || IsOpenCheck("/bin/true") || IsOpenCheck("<x") {
		t.Error("IsOpenCheck misclassifies")
	}
}

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	exitArg := writeScript(t, dir, "exit.sh", `exit "$1"`)
	argsOut := writeScript(t, dir, "args.sh", `for a in "$@"; do printf '[%s]' "$a"; done`)
	tests := []struct {
		name     string
		line     string
		extra    []string
		wantCode int
		wantOut  string
		wantErr  error
	}{
		{name: "zero", line: exitArg + " 0", wantCode: 0},
		{name: "one", line: exitArg + " 1", wantCode: 1},
		{name: "dynamic weight", line: exitArg + " 12", wantCode: 12},
		{name: "max", line: exitArg + " 255", wantCode: 255},
		{name: "quoted args and extra", line: argsOut + ` 'a b' c`, extra: []string{"INSTANCE", "VI_1", "MASTER", "100"},
			wantOut: "[a b][c][INSTANCE][VI_1][MASTER][100]"},
		{name: "missing program", line: filepath.Join(dir, "nope.sh"), wantErr: ErrStart},
		{name: "bad quoting", line: exitArg + " 'x", wantErr: ErrStart},
		{name: "no shell: metacharacters are arguments", line: argsOut + " ; echo pwned", wantOut: "[;][echo][pwned]"},
		// keepalived runs "</path" through the shell: a file-open check.
		{name: "open check of a file that opens", line: "</dev/null", wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), Command{Line: tt.line, Timeout: 5 * time.Second}, tt.extra...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if res.ExitCode != tt.wantCode {
				t.Errorf("exit = %d, want %d", res.ExitCode, tt.wantCode)
			}
			if tt.wantOut != "" && string(res.Output) != tt.wantOut {
				t.Errorf("output = %q, want %q", res.Output, tt.wantOut)
			}
		})
	}
}

func alive(pid int) bool {
	// A zombie still answers kill(0); read its state instead.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The script forks a sleeping child that inherits stdout, records its
	// pid, then waits for it: without a group kill Run would hang.
	hang := writeScript(t, dir, "hang.sh", `sleep 300 & echo $! > `+pidFile+`; wait`)
	start := time.Now()
	_, err := Run(context.Background(), Command{Line: hang, Timeout: 300 * time.Millisecond})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Run took %v with a 300ms timeout", elapsed)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("forked child %d still alive after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunBackgroundChildDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The script exits at once but leaves a child holding stdout open.
	bg := writeScript(t, dir, "bg.sh", `sleep 300 & echo $! > `+pidFile+`; exit 3`)
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	res, err := Run(context.Background(), Command{Line: bg, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit = %d, want 3", res.ExitCode)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v: the background child held it", d)
	}
}

func TestRunSignaled(t *testing.T) {
	dir := t.TempDir()
	self := writeScript(t, dir, "self.sh", `kill -9 $$`)
	_, err := Run(context.Background(), Command{Line: self, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrSignaled) {
		t.Fatalf("err = %v, want ErrSignaled", err)
	}
}

func TestRunCallerCancel(t *testing.T) {
	dir := t.TempDir()
	hang := writeScript(t, dir, "hang.sh", `exec sleep 300`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := Run(ctx, Command{Line: hang, Timeout: time.Minute})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNotifierDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	slow := writeScript(t, dir, "slow.sh", `echo "$@" > `+out+`; exec sleep 300`)
	var (
		mu   sync.Mutex
		errs []error
	)
	n := &Notifier{Done: func(_ Command, _ []string, _ Result, err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}}
	start := time.Now()
	n.Notify(Command{Line: slow, Timeout: 500 * time.Millisecond}, "INSTANCE", "VI_1", "MASTER", "150")
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Notify blocked for %v", d)
	}
	n.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !errors.Is(errs[0], ErrTimeout) {
		t.Fatalf("outcomes = %v, want one ErrTimeout", errs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "INSTANCE VI_1 MASTER 150" {
		t.Errorf("script args = %q", got)
	}
}
