package netif

import (
	"errors"
	"testing"
	"time"
)

func TestGARPSchedule(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at       time.Duration // since t0
		want     int           // Due
		wantNext time.Duration // -1: nothing left
	}
	tests := []struct {
		name   string
		timing GARPTiming
		steps  []step
	}{
		{"keepalived default: 5 now, 5 after 5s", DefaultGARPTiming, []step{
			{0, 5, 5 * time.Second},
			{4900 * time.Millisecond, 0, 5 * time.Second},
			{5 * time.Second, 5, -1},
			{time.Hour, 0, -1},
		}},
		{"no delay: one burst", GARPTiming{Repeat: 3}, []step{
			{0, 3, -1},
			{10 * time.Second, 0, -1},
		}},
		{"repeat 0 sends nothing", GARPTiming{Delay: time.Second}, []step{
			{0, 0, -1},
		}},
		{"refresh every 10s, 2 at a time", GARPTiming{Repeat: 1, Refresh: 10 * time.Second, RefreshRepeat: 2}, []step{
			{0, 1, 10 * time.Second},
			{10 * time.Second, 2, 20 * time.Second},
			{19 * time.Second, 0, 20 * time.Second},
			{20 * time.Second, 2, 30 * time.Second},
		}},
		{"refresh and delay interleave", GARPTiming{Repeat: 2, Delay: 5 * time.Second, Refresh: 3 * time.Second, RefreshRepeat: 1}, []step{
			{0, 2, 3 * time.Second},
			{3 * time.Second, 1, 5 * time.Second},
			{5 * time.Second, 2, 6 * time.Second},
			{6 * time.Second, 1, 9 * time.Second},
		}},
		{"interval spaces a burst", GARPTiming{Repeat: 3, Interval: 100 * time.Millisecond}, []step{
			{0, 1, 100 * time.Millisecond},
			{50 * time.Millisecond, 0, 100 * time.Millisecond},
			{100 * time.Millisecond, 1, 200 * time.Millisecond},
			{200 * time.Millisecond, 1, -1},
		}},
		{"clock jump does not replay missed refreshes", GARPTiming{Repeat: 1, Refresh: 10 * time.Second, RefreshRepeat: 1}, []step{
			{0, 1, 10 * time.Second},
			{35 * time.Second, 1, 45 * time.Second},
		}},
		{"negative values treated as zero", GARPTiming{Repeat: -1, Delay: -time.Second, Refresh: -time.Second}, []step{
			{0, 0, -1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewGARPSchedule(tc.timing, t0)
			for i, st := range tc.steps {
				if got := s.Due(t0.Add(st.at)); got != st.want {
					t.Errorf("step %d: Due(t0+%v) = %d, want %d", i, st.at, got, st.want)
				}
				next, ok := s.Next()
				switch {
				case st.wantNext < 0 && ok:
					t.Errorf("step %d: Next() = t0+%v, want nothing left", i, next.Sub(t0))
				case st.wantNext >= 0 && (!ok || !next.Equal(t0.Add(st.wantNext))):
					t.Errorf("step %d: Next() = t0+%v (%v), want t0+%v", i, next.Sub(t0), ok, st.wantNext)
				}
			}
		})
	}
}

func TestGARPTimingValidate(t *testing.T) {
	for _, tc := range []struct {
		t    GARPTiming
		want error
	}{
		{DefaultGARPTiming, nil},
		{GARPTiming{}, nil},
		{GARPTiming{Repeat: -1}, ErrBadGARPTiming},
		{GARPTiming{Delay: -time.Second}, ErrBadGARPTiming},
		{GARPTiming{Interval: -1}, ErrBadGARPTiming},
	} {
		if err := tc.t.Validate(); !errors.Is(err, tc.want) {
			t.Errorf("Validate(%+v) = %v, want %v", tc.t, err, tc.want)
		}
	}
}
