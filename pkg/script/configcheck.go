package script

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/xdpvip/xdpvip/pkg/config"
)

// DefaultScriptUser is the user keepalived runs scripts as when neither
// the script nor global_defs' script_user names one, if it exists
// (otherwise root).
const DefaultScriptUser = "keepalived_script"

// quietNote ends the warnings for what keepalived only logs (it does not
// count them as configuration errors): the operator still learns that the
// script will not run.
const quietNote = " (keepalived logs this and does not run it either)"

// Host is what CheckConfig needs to know about the machine.
type Host struct {
	// Security is passed to CheckSecurity (Enforce is taken from the
	// configuration's enable_script_security).
	Security SecurityOptions
	// LookupUser returns the uid and primary gid of a user name; nil
	// means the system's user database (os/user).
	LookupUser func(name string) (uid, gid uint32, err error)
	// LookupGroup returns the gid of a group name; nil means os/user.
	LookupGroup func(name string) (gid uint32, err error)
	// Self is the daemon's own identity, the default script user when
	// keepalived_script does not exist; nil means os.Getuid/os.Getgid.
	Self *Identity
}

// Disabled is one script keepalived 2.2.7 would not run.
type Disabled struct {
	config.Pos
	// Keyword is the script's keyword (vrrp_script, notify_master,
	// MISC_CHECK, quorum_up, ...).
	Keyword string
	// Name is the vrrp_script's name, else its command line.
	Name string
	// Owner says whose script it is ("vrrp_instance VI_1", "real_server
	// 10.0.0.1:80 of virtual_server 10.0.0.100:80", ...); empty for a
	// vrrp_script.
	Owner string
	// Reason is keepalived's message.
	Reason string
}

// Report is what CheckConfig found: the warnings to print and the
// scripts to leave out. Apply leaves them out of the configuration.
type Report struct {
	// Diagnostics are warnings, one per disabled script, at its
	// definition (keepalived's messages).
	Diagnostics []config.Diagnostic
	// Notes are keepalived's informational lines about the scripts that
	// are kept (a program found by path search, an insecure script
	// without enable_script_security), as "file:line: keyword: text".
	Notes []string
	// Disabled lists every script that will not run, in configuration
	// order.
	Disabled []Disabled
	// Scripts maps each disabled vrrp_script's name to the reason.
	Scripts map[string]string

	apply []func()
}

// Apply changes cfg, the configuration Report was made for, as keepalived
// does after its check: a disabled vrrp_script is taken out of every
// track_script (the vrrp_script block stays, so status can list it), a
// disabled notify script is cleared, a disabled MISC_CHECK is removed
// from its real server.
func (r *Report) Apply() {
	for _, f := range r.apply {
		f()
	}
	r.apply = nil
}

// checker carries one CheckConfig pass.
type checker struct {
	cfg  *config.Config
	host Host
	rep  *Report

	defaultID   Identity
	defaultErr  string // why there is no default script user ("" when there is one)
	defaultSeen bool   // defaultErr reported once

	// flags are the Flags of every script of the pass so far (vrrp or
	// check), found the first script with FlagIsScript.
	flags Flags
	found *config.Pos
}

// secure is CheckSecurity, remembering what the pass found.
func (c *checker) secure(pos config.Pos, line string, id Identity) Security {
	s := CheckSecurity(line, id, c.host.Security)
	c.flags |= s.Flags
	if s.Flags&FlagIsScript != 0 && c.found == nil {
		c.found = &pos
	}
	return s
}

// violation ends a pass as keepalived does: scripts found while
// enable_script_security is off are a SECURITY VIOLATION. pkg/config
// already warns when script_user is not set either, so only the case
// with script_user is reported here.
func (c *checker) violation(what string) {
	if c.found != nil && !c.cfg.Global.EnableScriptSecurity && c.cfg.Global.ScriptUser != "" {
		msg := "SECURITY VIOLATION - " + what + " are being executed but script_security not enabled."
		if c.flags&FlagInsecure != 0 {
			msg += " There are insecure scripts."
		}
		c.warn(*c.found, "enable_script_security", msg)
	}
	c.flags, c.found = 0, nil
}

// CheckConfig checks every script of cfg as keepalived 2.2.7 does at
// start and reload (check_vrrp_script_security in vrrp/vrrp.c,
// check_check_script_security in check/check_data.c): vrrp_scripts and
// the notify scripts of instances and sync groups when there is a
// vrrp_instance, MISC_CHECKs and the real and virtual servers' notify
// scripts when there is a virtual_server. It does not change cfg: call
// Apply on the result for that.
func CheckConfig(cfg *config.Config, host Host) *Report {
	c := &checker{cfg: cfg, host: host, rep: &Report{Scripts: map[string]string{}}}
	c.host.Security.Enforce = cfg.Global.EnableScriptSecurity
	c.resolveDefault()
	if len(cfg.Instances) > 0 {
		c.vrrp()
		c.violation("scripts")
	}
	if len(cfg.VirtualServers) > 0 {
		c.check()
		c.violation("check scripts")
	}
	return c.rep
}

func (c *checker) lookupUser(name string) (uint32, uint32, error) {
	if c.host.LookupUser != nil {
		return c.host.LookupUser(name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("user %s: bad uid/gid %s/%s", name, u.Uid, u.Gid)
	}
	return uint32(uid), uint32(gid), nil
}

func (c *checker) lookupGroup(name string) (uint32, error) {
	if c.host.LookupGroup != nil {
		return c.host.LookupGroup(name)
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("group %s: bad gid %s", name, g.Gid)
	}
	return uint32(gid), nil
}

// identity resolves "user [group]" as keepalived's set_uid_gid does.
func (c *checker) identity(userName, group string) (Identity, error) {
	uid, gid, err := c.lookupUser(userName)
	if err != nil {
		return Identity{}, err
	}
	if group != "" {
		if gid, err = c.lookupGroup(group); err != nil {
			return Identity{}, err
		}
	}
	return Identity{UID: uid, GID: gid}, nil
}

// resolveDefault finds the default script user: script_user, else
// keepalived_script, else ourselves (get_default_script_user); without
// keepalived_script and with enable_script_security there is none.
func (c *checker) resolveDefault() {
	g := c.cfg.Global
	if g.ScriptUser != "" {
		id, err := c.identity(g.ScriptUser, g.ScriptGroup)
		if err != nil {
			c.defaultErr = "Error setting global script uid/gid"
			return
		}
		c.defaultID = id
		return
	}
	if id, err := c.identity(DefaultScriptUser, ""); err == nil {
		c.defaultID = id
		return
	}
	if g.EnableScriptSecurity {
		c.defaultErr = "Unable to set default user " + DefaultScriptUser + " for script"
		return
	}
	if c.host.Self != nil {
		c.defaultID = *c.host.Self
	} else {
		c.defaultID = Identity{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	}
}

// scriptIdentity is who runs sc: its own user, else the default. A
// non-empty reason means the script cannot run.
func (c *checker) scriptIdentity(pos config.Pos, sc config.ScriptCmd) (Identity, string, bool) {
	if sc.User != "" {
		id, err := c.identity(sc.User, sc.Group)
		if err != nil {
			return Identity{}, "", false
		}
		return id, "", true
	}
	if c.defaultErr != "" {
		if !c.defaultSeen {
			c.defaultSeen = true
			c.warn(pos, "global_defs", c.defaultErr)
		}
		return Identity{}, c.defaultErr, false
	}
	return c.defaultID, "", true
}

func (c *checker) warn(pos config.Pos, keyword, msg string) {
	c.rep.Diagnostics = append(c.rep.Diagnostics, config.Diagnostic{Pos: pos, Keyword: keyword, Severity: config.Warning, Message: msg})
}

func (c *checker) notes(pos config.Pos, keyword string, s Security) {
	for _, n := range s.Notes {
		c.rep.Notes = append(c.rep.Notes, fmt.Sprintf("%s: %s: %s", pos, keyword, n))
	}
}

func (c *checker) disable(d Disabled, undo func()) {
	c.rep.Disabled = append(c.rep.Disabled, d)
	if undo != nil {
		c.rep.apply = append(c.rep.apply, undo)
	}
}

func (c *checker) vrrp() {
	for _, vs := range c.cfg.Scripts {
		c.vrrpScript(vs)
	}
	for _, in := range c.cfg.Instances {
		owner := "vrrp_instance " + in.Name
		c.notifySet(in.Pos, owner, &in.Notify)
		if len(c.rep.Scripts) > 0 {
			in := in
			c.rep.apply = append(c.rep.apply, func() { in.TrackScripts = c.untracked(in.TrackScripts) })
		}
	}
	for _, g := range c.cfg.SyncGroups {
		c.notifySet(g.Pos, "vrrp_sync_group "+g.Name, &g.Notify)
		if len(c.rep.Scripts) > 0 {
			g := g
			c.rep.apply = append(c.rep.apply, func() { g.TrackScripts = c.untracked(g.TrackScripts) })
		}
	}
}

// untracked is ts without the disabled vrrp_scripts.
func (c *checker) untracked(ts []config.TrackScript) []config.TrackScript {
	var out []config.TrackScript
	for _, t := range ts {
		if _, off := c.rep.Scripts[t.Name]; !off {
			out = append(out, t)
		}
	}
	return out
}

// vrrpScript is check_track_script_secure, and before it the parser's
// user checks (vrrp_vscript_user_handler, vrrp_vscript_end_handler).
func (c *checker) vrrpScript(vs *config.VRRPScript) {
	off := func(reason string) {
		c.warn(vs.Pos, "vrrp_script", reason)
		c.rep.Scripts[vs.Name] = reason
		c.disable(Disabled{Pos: vs.Pos, Keyword: "vrrp_script", Name: vs.Name, Reason: reason}, nil)
	}
	if vs.Script.IsZero() {
		return // the parser refuses a vrrp_script without script
	}
	id, why, ok := c.scriptIdentity(vs.Pos, vs.Script)
	switch {
	case !ok && why == "":
		off("Unable to set uid/gid for script " + cmdStr(vs.Script.Command))
		return
	case !ok:
		off("Unable to set default user for vrrp script " + vs.Name + " - removing")
		return
	}
	s := c.secure(vs.Pos, vs.Script.Command, id)
	c.notes(vs.Pos, "vrrp_script", s)
	switch {
	case s.Flags&FlagInhibit != 0:
		off("Disabling track script " + vs.Name + " due to insecure")
	case s.Flags&FlagNotFound != 0:
		off("Disabling track script " + vs.Name + " since not found/accessible")
	case s.Flags&(FlagExecutable|FlagSystem) == 0:
		off(lastNote(s, "script "+vs.Name+" is not executable") + quietNote)
	}
}

// notifySet checks the notify scripts of an instance or sync group.
func (c *checker) notifySet(pos config.Pos, owner string, n *config.Notify) {
	for _, k := range []struct {
		key string
		sc  *config.ScriptCmd
	}{
		{"notify_backup", &n.Backup}, {"notify_master", &n.Master}, {"notify_fault", &n.Fault},
		{"notify_stop", &n.Stop}, {"notify_deleted", &n.Deleted}, {"notify", &n.Any},
		{"notify_master_rx_lower_pri", &n.MasterRxLowerPri},
	} {
		c.notify(pos, owner, k.key, k.sc)
	}
}

// notify is check_notify_script_secure (and before it the parser's user
// check, notify_script_init): a script that is not executable, not
// found or insecure is cleared, as keepalived frees it.
func (c *checker) notify(pos config.Pos, owner, keyword string, sc *config.ScriptCmd) {
	if sc.IsZero() {
		return
	}
	off := func(reason string) {
		msg := fmt.Sprintf("%s of %s disabled: %s", keyword, owner, reason) + quietNote
		c.warn(pos, keyword, msg)
		c.disable(Disabled{Pos: pos, Keyword: keyword, Name: sc.Command, Owner: owner, Reason: reason}, func() { *sc = config.ScriptCmd{} })
	}
	id, why, ok := c.scriptIdentity(pos, *sc)
	if !ok {
		prog := firstWord(sc.Command)
		if why == "" {
			off(fmt.Sprintf("Invalid user/group for %s script %s - ignoring", keywordType(keyword), prog))
		} else {
			off(fmt.Sprintf("Failed to set default user for %s script %s - ignoring", keywordType(keyword), prog))
		}
		return
	}
	s := c.secure(pos, sc.Command, id)
	if s.NotifyDisabled() {
		reason := "a file-open check (\"</path\") is not run as a notify script"
		if s.Flags&FlagSystem == 0 {
			reason = lastNote(s, "not executable")
		}
		off(reason)
		return
	}
	c.notes(pos, keyword, s)
}

// check is check_check_script_security: MISC_CHECKs first, then the
// virtual and real servers' notify scripts.
func (c *checker) check() {
	for _, vs := range c.cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			rs := rs
			for _, ch := range rs.Checkers {
				if ch.Kind == config.MiscCheck {
					c.misc(vs, rs, ch)
				}
			}
		}
	}
	for _, vs := range c.cfg.VirtualServers {
		vsName := "virtual_server " + vs.Key()
		c.notify(vs.Pos, vsName, "quorum_up", &vs.QuorumUp)
		c.notify(vs.Pos, vsName, "quorum_down", &vs.QuorumDown)
		for _, rs := range vs.RealServers {
			owner := "real_server " + rsName(rs) + " of " + vsName
			c.notify(rs.Pos, owner, "notify_up", &rs.NotifyUp)
			c.notify(rs.Pos, owner, "notify_down", &rs.NotifyDown)
		}
	}
}

// misc is check_misc_script_security for one MISC_CHECK (and before it
// misc_end_handler's default user): a disabled one is removed from its
// real server, as keepalived frees the checker.
func (c *checker) misc(vs *config.VirtualServer, rs *config.RealServer, ch *config.Checker) {
	owner := "real_server " + rsName(rs) + " of virtual_server " + vs.Key()
	cmd := cmdStr(ch.MiscPath.Command)
	off := func(reason string, quiet bool) {
		msg := reason
		if quiet {
			msg += quietNote
		}
		c.warn(ch.Pos, string(config.MiscCheck), msg)
		c.disable(Disabled{Pos: ch.Pos, Keyword: string(config.MiscCheck), Name: ch.MiscPath.Command, Owner: owner, Reason: reason}, func() {
			for i, x := range rs.Checkers {
				if x == ch {
					rs.Checkers = append(rs.Checkers[:i:i], rs.Checkers[i+1:]...)
					return
				}
			}
		})
	}
	id, why, ok := c.scriptIdentity(ch.Pos, ch.MiscPath)
	switch {
	case !ok && why == "":
		off("Unable to set uid/gid for misc script "+cmd, false)
		return
	case !ok:
		off("Unable to set default user for misc script "+cmd+" - removing", false)
		return
	}
	s := c.secure(ch.Pos, ch.MiscPath.Command, id)
	c.notes(ch.Pos, string(config.MiscCheck), s)
	switch {
	case s.Flags&FlagInhibit != 0:
		off("Disabling misc script "+cmd+" due to insecure", true)
	case s.Flags&FlagNotFound != 0:
		off("Disabling misc script "+cmd+" since not found/accessible", true)
	case s.Flags&(FlagExecutable|FlagSystem) == 0:
		off(lastNote(s, "misc script "+cmd+" is not executable"), true)
	}
}

func rsName(rs *config.RealServer) string {
	a := rs.Addr.String()
	if rs.Addr.Is6() {
		a = "[" + a + "]"
	}
	if rs.Port == 0 {
		return a
	}
	return a + ":" + strconv.Itoa(int(rs.Port))
}

// cmdStr is keepalived's cmd_str: the words of the command line joined
// by single spaces.
func cmdStr(line string) string {
	if argv, err := Split(line); err == nil {
		return strings.Join(argv, " ")
	}
	return line
}

func firstWord(line string) string {
	if argv, err := Split(line); err == nil {
		return argv[0]
	}
	return line
}

// keywordType is the script type keepalived's notify_script_init names.
func keywordType(keyword string) string {
	if t, ok := strings.CutPrefix(keyword, "notify_"); ok {
		return t
	}
	return keyword
}

// lastNote is the last line keepalived logged for s, or def.
func lastNote(s Security, def string) string {
	if len(s.Notes) > 0 {
		return s.Notes[len(s.Notes)-1]
	}
	return def
}
