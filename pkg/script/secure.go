package script

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Flags are what CheckSecurity found out about a script: keepalived's
// SC_* bits (lib/notify.h), with the same values.
type Flags uint

const (
	// FlagInsecure (SC_INSECURE): the program or a directory above it can
	// be changed by someone other than root.
	FlagInsecure Flags = 0x01
	// FlagIsScript (SC_ISSCRIPT): a program file was found.
	FlagIsScript Flags = 0x02
	// FlagInhibit (SC_INHIBIT): the script must not run (insecure under
	// enable_script_security, a path element of the wrong type).
	FlagInhibit Flags = 0x04
	// FlagNotFound (SC_NOTFOUND): the program, or an element of its path,
	// does not exist or cannot be reached by the script's user.
	FlagNotFound Flags = 0x08
	// FlagExecutable (SC_EXECUTABLE): the program is executable by the
	// script's uid/gid.
	FlagExecutable Flags = 0x10
	// FlagSystem (SC_SYSTEM): a "</path" file-open check, run through the
	// shell, not a program.
	FlagSystem Flags = 0x40
)

// DefaultPATH is the search path for a bare program name when PATH is not
// set (glibc's confstr(_CS_PATH), which keepalived falls back to).
const DefaultPATH = "/bin:/usr/bin"

// Identity is the user and group a script runs as.
type Identity struct {
	UID, GID uint32
}

// SecurityOptions are the host settings CheckSecurity works with.
type SecurityOptions struct {
	// Enforce is enable_script_security: an insecure script is disabled
	// instead of only noted.
	Enforce bool
	// PATH is searched for a program named without a '/'. Empty means
	// the process's PATH, or DefaultPATH when that is not set.
	PATH string
	// Groups are the supplementary groups of the checking process, which
	// keepalived keeps while it resolves the path as the script's user.
	// Nil means os.Getgroups().
	Groups []uint32
}

// Security is the outcome of CheckSecurity for one script.
type Security struct {
	Flags Flags
	// Program is argv[0] as keepalived runs it: found by path search,
	// "/./", "/../" and symbolic links resolved (the file name part kept
	// when it names the same file). Empty when not found.
	Program string
	// Notes are the lines keepalived logs (LOG_INFO) while checking, in
	// order, e.g. "Cannot find script x in path - disabling".
	Notes []string
}

// Disabled reports whether keepalived would not run the script as a
// vrrp_script or MISC_CHECK: it must be inhibited, was not found, or is
// neither executable nor a file-open check.
func (s Security) Disabled() bool {
	return s.Flags&(FlagInhibit|FlagNotFound) != 0 || s.Flags&(FlagExecutable|FlagSystem) == 0
}

// NotifyDisabled reports whether keepalived would not run the script as a
// notify script (check_notify_script_secure): as Disabled, and a
// file-open check is not run either.
func (s Security) NotifyDisabled() bool {
	return s.Flags&(FlagInhibit|FlagNotFound) != 0 || s.Flags&FlagExecutable == 0
}

func (s *Security) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// CheckSecurity checks the script command line as keepalived 2.2.7's
// check_script_secure (lib/notify.c) does before it runs any script: the
// program is looked up in PATH when it has no '/', must be reachable and
// executable by id, and when it runs as root (id is root, or the file is
// set-uid/set-gid root) neither it nor any directory above it may be
// writable by non-root (a directory with the sticky bit may be group or
// world writable), nor owned by non-root. A line "</path" is a file-open
// check (FlagSystem) and is not checked further.
func CheckSecurity(line string, id Identity, o SecurityOptions) Security {
	var s Security
	if IsOpenCheck(line) {
		s.Flags = FlagSystem
		return s
	}
	argv, err := Split(line)
	if err != nil {
		s.note("Unable to parse script '%s' - ignoring", line)
		s.Flags = FlagNotFound
		return s
	}
	groups := o.Groups
	if groups == nil {
		groups = processGroups()
	}
	prog := argv[0]
	if !strings.Contains(prog, "/") {
		found, eacces := findInPath(prog, id, pathList(o.PATH))
		if found == "" {
			if eacces {
				s.note("Permissions failure for script %s in path - disabling", prog)
			} else {
				s.note("Cannot find script %s in path - disabling", prog)
			}
			s.Flags = FlagNotFound
			return s
		}
		s.note("WARNING - script `%s` resolved by path search to `%s`. Please specify full path.", prog, found)
		prog = found
	}

	// keepalived calls realpath() with the script's euid/egid.
	resolved, err := realpathAs(prog, id, groups)
	if err != nil {
		s.note("Script %s cannot be accessed - %s", prog, errText(err))
		s.Flags = FlagNotFound
		return s
	}
	realFile := ""
	if prog != resolved {
		// Keep the file name part when it differs (some programs act on
		// the name they are called by), if it is still the same file.
		newPath := resolved
		if filepath.Base(prog) != filepath.Base(resolved) {
			realFile = resolved
			newPath = resolved[:strings.LastIndexByte(resolved, '/')+1] + prog[strings.LastIndexByte(prog, '/')+1:]
			var real, named syscall.Stat_t
			if syscall.Stat(realFile, &real) == nil &&
				(syscall.Stat(newPath, &named) != nil || real.Dev != named.Dev || real.Ino != named.Ino) {
				newPath, realFile = realFile, ""
			}
		}
		prog = newPath
	}
	s.Program = prog

	var st syscall.Stat_t
	statPath := prog
	if realFile != "" {
		statPath = realFile
	}
	if err := syscall.Stat(statPath, &st); err != nil {
		s.note("Unable to access script `%s` - disabling", prog)
		s.Flags = FlagNotFound
		return s
	}
	s.Flags = FlagIsScript
	protect := false
	if isExecutable(&st, id) {
		s.Flags |= FlagExecutable
		protect = id.UID == 0 || id.GID == 0 ||
			(st.Uid == 0 && st.Mode&syscall.S_IXUSR != 0 && st.Mode&syscall.S_ISUID != 0) ||
			(st.Gid == 0 && st.Mode&syscall.S_IXGRP != 0 && st.Mode&syscall.S_ISGID != 0)
	} else {
		s.note("WARNING - script '%s' is not executable for uid:gid %d:%d - disabling.", prog, id.UID, id.GID)
	}
	if !protect {
		return s
	}
	s.Flags |= s.pathSecurity(prog, o.Enforce)
	if realFile != "" {
		s.Flags |= s.pathSecurity(realFile, o.Enforce)
	}
	return s
}

// pathSecurity is keepalived's check_security: "/", then every directory
// on the way, then the file itself (symbolic links not followed) must
// exist, be directories and a regular file or link, be owned by root and
// not be writable by a non-root group or by everyone (a directory with
// the sticky bit may be).
func (s *Security) pathSecurity(name string, enforce bool) Flags {
	for i := 0; ; {
		j := strings.IndexByte(name[i:], '/')
		last := j < 0
		elem := name
		if !last {
			end := i + j
			if end == 0 {
				end = 1 // "/" itself first
			}
			elem = name[:end]
			i += j + 1
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(elem, &st); err != nil {
			if err == syscall.EACCES || err == syscall.ELOOP || err == syscall.ENOENT || err == syscall.ENOTDIR {
				s.note("check_script_secure could not find script '%s' - disabling", name)
			} else {
				var errno syscall.Errno
				errors.As(err, &errno)
				s.note("check_script_secure('%s') returned errno %d - %s - disabling", name, int(errno), errText(err))
			}
			return FlagNotFound
		}
		typ := st.Mode & syscall.S_IFMT
		isDir, isReg := typ == syscall.S_IFDIR, typ == syscall.S_IFREG
		if (!last && !isDir) || (last && !isReg && typ != syscall.S_IFLNK) {
			s.note("Wrong file type found in script path '%s'.", name)
			return FlagInhibit
		}
		if st.Uid != 0 ||
			(((isDir && st.Mode&syscall.S_ISVTX == 0) || isReg) &&
				((st.Gid != 0 && st.Mode&syscall.S_IWGRP != 0) || st.Mode&syscall.S_IWOTH != 0)) {
			suffix := ""
			if enforce {
				suffix = " - disabling"
			}
			s.note("Unsafe permissions found for script '%s'%s.", name, suffix)
			if enforce {
				return FlagInsecure | FlagInhibit
			}
			return FlagInsecure
		}
		if last {
			return 0
		}
	}
}

// isExecutable is keepalived's is_executable: root needs any execute
// bit; the owner the owner's; anyone else the group's bit when the group
// matches, else the others' bit. Supplementary groups do not count.
func isExecutable(st *syscall.Stat_t, id Identity) bool {
	m := st.Mode
	switch {
	case id.UID == 0:
		return m&(syscall.S_IXUSR|syscall.S_IXGRP|syscall.S_IXOTH) != 0
	case id.UID == st.Uid:
		return m&syscall.S_IXUSR != 0
	case id.GID == st.Gid:
		return m&syscall.S_IXGRP != 0
	default:
		return m&syscall.S_IXOTH != 0
	}
}

// pathList is the PATH to search: p, else $PATH, else DefaultPATH.
func pathList(p string) string {
	if p != "" {
		return p
	}
	if env, ok := os.LookupEnv("PATH"); ok {
		return env
	}
	return DefaultPATH
}

// findInPath is keepalived's find_path (glibc's execvpe search): the
// first PATH entry holding a regular file executable by id, looked up
// with id's permissions (its group as the only supplementary group). An
// empty entry is the current directory. eacces reports that a file was
// found but was not a regular file or not executable.
func findInPath(file string, id Identity, path string) (found string, eacces bool) {
	if file == "" {
		return "", false
	}
	for _, dir := range strings.Split(path, ":") {
		cand := file
		if dir != "" {
			cand = dir + "/" + file
		}
		if !reachable(cand, id, []uint32{id.GID}) {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(cand, &st) != nil {
			continue
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG || !isExecutable(&st, id) {
			eacces = true
			continue
		}
		return cand, false
	}
	return "", eacces
}

// realpathAs resolves name as realpath(3) run with id's effective uid and
// gid (and groups as supplementary groups) would: every directory the
// lookup passes must be searchable by id.
func realpathAs(name string, id Identity, groups []uint32) (string, error) {
	abs := name
	if !filepath.IsAbs(abs) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		abs = wd + "/" + name
	}
	// Walk the path one element at a time, following links, so that the
	// search permission of every directory actually passed is checked.
	const maxLinks = 40
	links := 0
	done := "/"
	rest := abs
	for rest != "" {
		var elem string
		elem, rest, _ = strings.Cut(strings.TrimLeft(rest, "/"), "/")
		rest = strings.TrimLeft(rest, "/")
		switch elem {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		if !searchable(done, id, groups) {
			return "", syscall.EACCES
		}
		next := filepath.Join(done, elem)
		var st syscall.Stat_t
		if err := syscall.Lstat(next, &st); err != nil {
			return "", err
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			links++
			if links > maxLinks {
				return "", syscall.ELOOP
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				done = "/"
			}
			if rest != "" {
				rest = target + "/" + rest
			} else {
				rest = target
			}
			continue
		}
		if (rest != "" || strings.HasSuffix(name, "/")) && st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return "", syscall.ENOTDIR
		}
		done = next
	}
	return done, nil
}

// reachable reports whether every directory above name can be searched
// by id with groups, resolving nothing (path search's stat is done as
// the script's user; a link passed is followed by realpathAs later).
func reachable(name string, id Identity, groups []uint32) bool {
	if id.UID == 0 {
		return true
	}
	abs := name
	if !filepath.IsAbs(abs) {
		wd, err := os.Getwd()
		if err != nil {
			return false
		}
		abs = filepath.Join(wd, name)
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if !searchable(d, id, groups) {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// searchable reports whether directory dir may be searched by id with
// supplementary groups: the kernel's permission check for MAY_EXEC
// (root always may).
func searchable(dir string, id Identity, groups []uint32) bool {
	if id.UID == 0 {
		return true
	}
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) != nil {
		return false
	}
	m := st.Mode
	switch {
	case id.UID == st.Uid:
		return m&syscall.S_IXUSR != 0
	case id.GID == st.Gid || contains(groups, st.Gid):
		return m&syscall.S_IXGRP != 0
	default:
		return m&syscall.S_IXOTH != 0
	}
}

func contains(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func processGroups() []uint32 {
	gs, err := os.Getgroups()
	if err != nil {
		return []uint32{}
	}
	out := make([]uint32, 0, len(gs))
	for _, g := range gs {
		out = append(out, uint32(g))
	}
	return out
}

// errText is strerror's text for err ("No such file or directory").
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if t := errno.Error(); t != "" {
			return strings.ToUpper(t[:1]) + t[1:]
		}
	}
	return err.Error()
}
