package tests

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// The suite's summaries (the keepalived agreement line, the interop
// matrix): go test shows a passing package's output only with -v, so they
// are also collected here and TestMain writes them after the tests, to
// stdout and, when XDPVIP_REPORT names a file, appended to it (make test
// prints that file after go test).
var (
	reportMu    sync.Mutex
	reportLines []string
)

// suiteReport records one summary for the end of the run.
func suiteReport(format string, args ...any) {
	reportMu.Lock()
	defer reportMu.Unlock()
	reportLines = append(reportLines, strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
}

// printSuiteReport writes the summaries to w and to $XDPVIP_REPORT.
func printSuiteReport(w io.Writer) {
	reportMu.Lock()
	defer reportMu.Unlock()
	if len(reportLines) == 0 {
		return
	}
	if path := os.Getenv("XDPVIP_REPORT"); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			defer f.Close()
			w = io.MultiWriter(w, f)
		}
	}
	for _, l := range reportLines {
		fmt.Fprintln(w, l)
	}
}
