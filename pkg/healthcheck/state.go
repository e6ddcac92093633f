package healthcheck

import "time"

// Timing is one checker's schedule, keepalived's delay_loop, retry
// (nb_get_retry), delay_before_retry, connect_timeout and warmup.
type Timing struct {
	// DelayLoop is the interval between checks (the checker's, else the
	// real server's, else the virtual server's delay_loop).
	DelayLoop time.Duration
	// Retry is how many more times a failing check of a live server is
	// tried before the server is declared down.
	Retry int
	// DelayBeforeRetry spaces those retries.
	DelayBeforeRetry time.Duration
	// ConnectTimeout bounds each check (put on its context). 0 means no
	// bound from the Monitor: use it for MISC_CHECK, whose misc_timeout
	// bounds the script.
	ConnectTimeout time.Duration
	// Warmup is the maximum random delay before the first check; 0 starts
	// at once. keepalived's default is delay_loop: the config mapper
	// passes that when warmup is absent.
	Warmup time.Duration
}

// keepalived's defaults, for the config mapper.
const (
	DefaultDelayLoop       = 60 * time.Second
	DefaultConnectTimeout  = 5 * time.Second
	DefaultRetry           = 1
	DefaultDNSRetry        = 3
	DefaultMiscRetry       = 0
	DefaultHTTPRetryDelay  = 3 * time.Second
	DefaultOtherRetryDelay = 1 * time.Second
)

// checkState is one checker's verdict and retry count: a pure state
// machine stepped with each check's outcome.
type checkState struct {
	up      bool
	hasRun  bool
	retried int
}

// observe records one check's outcome and returns the delay before the
// next check and whether the checker's verdict changed.
//
// As keepalived: a success brings the checker up at once and resets the
// retries. A failure of a checker that is up (or has never run) is retried
// up to Retry times, DelayBeforeRetry apart, and only then declared down;
// a checker that is already down is simply checked again after DelayLoop.
func (s *checkState) observe(ok bool, t Timing) (next time.Duration, changed bool) {
	first := !s.hasRun
	s.hasRun = true
	if ok {
		s.retried = 0
		changed = !s.up
		s.up = true
		return t.DelayLoop, changed
	}
	if s.up || first {
		if s.retried < t.Retry {
			s.retried++
			return t.DelayBeforeRetry, false
		}
		s.retried = 0
		changed = s.up
		s.up = false
		return t.DelayLoop, changed
	}
	return t.DelayLoop, false
}
