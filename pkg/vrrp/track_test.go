package vrrp

import (
	"reflect"
	"testing"
	"time"
)

func TestEffectivePriority(t *testing.T) {
	tests := []struct {
		name      string
		base      uint8
		tracked   []Tracked
		wantPrio  uint8
		wantFault bool
	}{
		{"nothing tracked", 100, nil, 100, false},
		{"positive weight, OK: added", 100, []Tracked{{Weight: 10, OK: true}}, 110, false},
		{"positive weight, failing: nothing", 100, []Tracked{{Weight: 10, OK: false}}, 100, false},
		{"negative weight, failing: subtracted", 100, []Tracked{{Weight: -20, OK: false}}, 80, false},
		{"negative weight, OK: nothing", 100, []Tracked{{Weight: -20, OK: true}}, 100, false},
		{"no weight, failing: FAULT", 100, []Tracked{{Weight: 0, OK: false}}, 100, true},
		{"no weight, OK", 100, []Tracked{{Weight: 0, OK: true}}, 100, false},
		{"mixed", 100, []Tracked{{Weight: 2, OK: true}, {Weight: -4, OK: false}, {Weight: 0, OK: true}, {Weight: 5, OK: false}}, 98, false},
		{"clamped at 254", 250, []Tracked{{Weight: 10, OK: true}}, 254, false},
		{"clamped at 1", 10, []Tracked{{Weight: -50, OK: false}}, 1, false},
		{"owner ignores weights", 255, []Tracked{{Weight: -50, OK: false}, {Weight: 10, OK: true}}, 255, false},
		{"owner still faults", 255, []Tracked{{Weight: 0, OK: false}}, 255, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prio, fault := EffectivePriority(tt.base, tt.tracked)
			if prio != tt.wantPrio || fault != tt.wantFault {
				t.Fatalf("EffectivePriority = %d, %v; want %d, %v", prio, fault, tt.wantPrio, tt.wantFault)
			}
		})
	}
}

func TestScriptCounter(t *testing.T) {
	const S, F = true, false
	tests := []struct {
		name       string
		rise, fall int
		initFail   bool
		results    []bool
		want       []bool // OK after each result
	}{
		{"rise 1 fall 1", 1, 1, false, []bool{F, S, F, F, S}, []bool{false, true, false, false, true}},
		{"starts OK, first failure decides", 3, 3, false, []bool{F}, []bool{false}},
		{"init_fail, first success decides", 3, 3, true, []bool{S}, []bool{true}},
		{"fall 3 needs three failures in a row", 2, 3, false, []bool{S, F, F, S, F, F, F},
			[]bool{true, true, true, true, true, true, false}},
		{"rise 3 needs three successes in a row", 3, 2, false, []bool{F, S, S, F, S, S, S},
			[]bool{false, false, false, false, false, false, true}},
		{"zero rise/fall act as 1", 0, 0, false, []bool{F, S}, []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewScriptCounter(tt.rise, tt.fall, tt.initFail)
			prev := c.OK()
			for i, r := range tt.results {
				ok, changed := c.Report(r)
				if ok != tt.want[i] || ok != c.OK() {
					t.Fatalf("after result %d (%v): OK %v, want %v", i, r, ok, tt.want[i])
				}
				if changed != (ok != prev) {
					t.Fatalf("after result %d: changed %v, was %v now %v", i, changed, prev, ok)
				}
				prev = ok
			}
		})
	}
}

func TestSyncGroupFollow(t *testing.T) {
	M, B, F, I := StateMaster, StateBackup, StateFault, StateInit
	tests := []struct {
		name   string
		states []State
		leader int
		want   []State
	}{
		{"one FAULT takes all to FAULT", []State{F, M, B, I}, 0, []State{I, F, F, I}},
		{"one MASTER takes the BACKUPs", []State{B, M, B}, 1, []State{M, I, M}},
		{"one BACKUP takes the MASTERs", []State{M, B, M}, 1, []State{B, I, B}},
		{"FAULT members are not promoted", []State{M, F}, 0, []State{I, I}},
		{"leader out of range", []State{M, B}, 5, []State{I, I}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SyncGroupFollow(tt.states, tt.leader); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("SyncGroupFollow = %v, want %v", got, tt.want)
			}
		})
	}
}

// Two instances in a sync group driven through SyncGroupFollow and the
// machines' sync events move together.
func TestSyncGroupDrivesMachines(t *testing.T) {
	a := newClock(t, params(Version3, 100))
	b := newClock(t, params(Version3, 100))
	a.step(Startup{})
	b.step(Startup{})
	b.advance(time.Second) // b is a second behind
	a.advance(a.m.MasterDownInterval())
	a.wantState(StateMaster)
	b.wantState(StateBackup)
	follow := func(leader int) {
		cs := []*clock{a, b}
		states := []State{a.m.State(), b.m.State()}
		for i, to := range SyncGroupFollow(states, leader) {
			switch to {
			case StateMaster:
				cs[i].step(SyncMaster{})
			case StateBackup:
				cs[i].step(SyncBackup{})
			case StateFault:
				cs[i].step(InterfaceDown{})
			}
		}
	}
	follow(0)
	b.wantState(StateMaster)
	// a hears a higher priority MASTER and yields; b follows to BACKUP.
	a.step(adv(Version3, 200, time.Second))
	a.wantState(StateBackup)
	follow(0)
	b.wantState(StateBackup)
	// b's interface fails: a goes to FAULT with it.
	b.step(InterfaceDown{})
	follow(1)
	a.wantState(StateFault)
}
