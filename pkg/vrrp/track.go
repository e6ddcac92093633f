package vrrp

// Tracked is the current state of one object an instance tracks
// (track_interface, track_script, track_file) with the weight the instance
// gives it.
type Tracked struct {
	// Weight is keepalived's weight: > 0 adds to the priority while the
	// object is OK, < 0 subtracts while it is failing, 0 puts the instance
	// in FAULT while it is failing.
	Weight int
	OK     bool
}

// EffectivePriority computes keepalived's effective priority from the
// configured base priority and the tracked objects, and whether an
// unweighted object is failing (the instance must be in FAULT).
// The sum is clamped to 1..254. An address owner (base 255) keeps 255:
// keepalived ignores weights there (and warns at config time).
func EffectivePriority(base uint8, tracked []Tracked) (priority uint8, fault bool) {
	total := int(base)
	for _, t := range tracked {
		switch {
		case t.Weight == 0:
			if !t.OK {
				fault = true
			}
		case t.Weight > 0 && t.OK:
			total += t.Weight
		case t.Weight < 0 && !t.OK:
			total += t.Weight
		}
	}
	if base == PriorityOwner {
		return PriorityOwner, fault
	}
	return uint8(min(max(total, 1), PriorityOwner-1)), fault
}

// ScriptCounter applies a vrrp_script's rise and fall to its run results,
// as keepalived counts them: the script turns OK after rise consecutive
// successes and failed after fall consecutive failures.
//
// The count runs 0..rise+fall−1 and the script is OK at rise or above. A
// success below rise−1 counts up, otherwise jumps to the top; a failure
// above rise counts down, otherwise drops to 0. The initial count is rise
// (OK; one failure fails it), or rise−1 with init_fail (failed; one success
// makes it OK), so the first result decides, as in keepalived.
type ScriptCounter struct {
	rise, fall int
	count      int
}

// NewScriptCounter returns a counter for a script with the given rise and
// fall (values below 1 mean 1) and keepalived's init_fail option.
func NewScriptCounter(rise, fall int, initFail bool) *ScriptCounter {
	rise, fall = max(rise, 1), max(fall, 1)
	c := &ScriptCounter{rise: rise, fall: fall, count: rise}
	if initFail {
		c.count = rise - 1
	}
	return c
}

// OK reports whether the script is currently considered OK.
func (c *ScriptCounter) OK() bool { return c.count >= c.rise }

// Report feeds one run result (exit status 0 = success) and returns the
// new OK state and whether it changed.
func (c *ScriptCounter) Report(success bool) (ok, changed bool) {
	was := c.OK()
	if success {
		if c.count < c.rise-1 {
			c.count++
		} else {
			c.count = c.rise + c.fall - 1
		}
	} else {
		if c.count > c.rise {
			c.count--
		} else {
			c.count = 0
		}
	}
	return c.OK(), c.OK() != was
}

// SyncGroupFollow says how the other members of a vrrp_sync_group follow
// member leader, which has just entered states[leader]: the result holds,
// for each member, the state it must be driven to, or StateInit to leave it
// alone. One member in FAULT takes all of them to FAULT; one becoming
// MASTER takes the BACKUPs to MASTER; one becoming BACKUP takes the MASTERs
// to BACKUP. The runtime drives members with InterfaceDown/InterfaceUp (for
// FAULT, ORing the group fault with the member's own) and with
// SyncMaster/SyncBackup.
func SyncGroupFollow(states []State, leader int) []State {
	out := make([]State, len(states))
	if leader < 0 || leader >= len(states) {
		return out
	}
	for i, s := range states {
		if i == leader {
			continue
		}
		switch states[leader] {
		case StateFault:
			if s != StateFault && s != StateInit {
				out[i] = StateFault
			}
		case StateMaster:
			if s == StateBackup {
				out[i] = StateMaster
			}
		case StateBackup:
			if s == StateMaster {
				out[i] = StateBackup
			}
		}
	}
	return out
}
