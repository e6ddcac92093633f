package instance

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
)

// A runner's status: not running and bad (init_fail) before Run, running
// and good once the script succeeded (rise 1), bad after it fails, not
// running once Run ended.
func TestScriptRunnerStatus(t *testing.T) {
	flag := t.TempDir() + "/fail"
	sc := &config.VRRPScript{Name: "chk", Script: config.ScriptCmd{Command: "/bin/sh -c '! test -e " + flag + "'"},
		Interval: 20 * time.Millisecond, Rise: 1, Fall: 1, InitFail: true}
	r := NewScriptRunner(sc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if st := r.Status(); st.Name != "chk" || st.OK || st.Running {
		t.Fatalf("before Run: %+v, want chk not OK, not running", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitStatus := func(want ScriptStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for r.Status() != want {
			if time.Now().After(deadline) {
				t.Fatalf("status %+v, want %+v", r.Status(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitStatus(ScriptStatus{Name: "chk", OK: true, Running: true})
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitStatus(ScriptStatus{Name: "chk", OK: false, Running: true})
	cancel()
	<-done
	if st := r.Status(); st.Running {
		t.Fatalf("after Run: %+v, want not running", st)
	}
}
