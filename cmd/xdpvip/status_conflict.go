package main

import (
	"fmt"
	"io"
	"time"

	"github.com/xdpvip/xdpvip/internal/daemon"
)

// writeConflicts prints one line per instance that saw split-brain
// evidence while MASTER: how much, the last piece, and whether it goes on.
func writeConflicts(w io.Writer, st *daemon.Status) {
	for _, in := range st.Instances {
		if in.Conflicts == 0 {
			continue
		}
		state := "over"
		if in.ConflictActive {
			state = "ONGOING"
		}
		last := "-"
		if c := in.LastConflict; c != nil {
			what := fmt.Sprintf("%s for %s from %s", c.Kind, c.VIP, c.MAC)
			if c.Kind == "advert" {
				what = fmt.Sprintf("advert from %s priority %d", c.Source, c.Priority)
				if c.Yielded {
					what += " (yielded)"
				}
			}
			last = c.Time.Format(time.TimeOnly) + " " + what
		}
		fmt.Fprintf(w, "split brain on %s: %d conflicts (%s), last %s, re-announced %d times\n",
			in.Name, in.Conflicts, state, last, in.ConflictReannounced)
	}
}
