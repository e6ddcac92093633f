package ipvsvm

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoModule is wrapped when a module (or one it depends on) is not in
// the kernel's module tree.
var ErrNoModule = errors.New("ipvsvm: module not found")

// ModInfo is what a module's .modinfo section says about loading it.
type ModInfo struct {
	Depends []string // modules that must be loaded first (depends=)
	SoftPre []string // soft dependencies to load first (softdep=pre:)
}

// ParseModInfo decodes a .modinfo section: NUL-separated "key=value"
// strings.
func ParseModInfo(section []byte) ModInfo {
	var mi ModInfo
	for _, kv := range bytes.Split(section, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					mi.Depends = append(mi.Depends, modName(d))
				}
			}
		case "softdep":
			// "pre: a b post: c"
			pre := false
			for _, f := range strings.Fields(v) {
				switch f {
				case "pre:":
					pre = true
				case "post:":
					pre = false
				default:
					if pre {
						mi.SoftPre = append(mi.SoftPre, modName(f))
					}
				}
			}
		}
	}
	return mi
}

// modName normalises a module name as the kernel does: dashes are
// underscores.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// softAliases maps soft-dependency names that are crypto aliases, not
// module names, to the module that provides them in Debian's kernel:
// libcrc32c asks for "crc32c", which busybox modprobe cannot resolve, and
// fails to load unless crc32c_generic is there first.
var softAliases = map[string]string{"crc32c": "crc32c_generic"}

// ModuleTree indexes the .ko files of one kernel's /lib/modules/<release>.
type ModuleTree struct {
	Dir   string
	paths map[string]string // module name -> path relative to Dir
}

// xzSuffix marks an xz-compressed module: Debian 12's 6.1 ships plain
// .ko files, its 6.12 series .ko.xz ones.
const xzSuffix = ".xz"

// OpenModuleTree indexes dir's .ko and .ko.xz files (zstd-compressed
// modules are not supported).
func OpenModuleTree(dir string) (*ModuleTree, error) {
	t := &ModuleTree{Dir: dir, paths: map[string]string{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name := strings.TrimSuffix(d.Name(), xzSuffix); !d.IsDir() && strings.HasSuffix(name, ".ko") {
			rel, _ := filepath.Rel(dir, p)
			t.paths[modName(strings.TrimSuffix(name, ".ko"))] = rel
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.paths) == 0 {
		return nil, fmt.Errorf("%w: no .ko files under %s", ErrNoModule, dir)
	}
	return t, nil
}

// Path returns the module's path relative to the tree.
func (t *ModuleTree) Path(name string) (string, bool) {
	p, ok := t.paths[modName(name)]
	return p, ok
}

// Read returns the module's ELF image, decompressed (xz -dc) when the
// tree holds it compressed.
func (t *ModuleTree) Read(name string) ([]byte, error) {
	rel, ok := t.Path(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoModule, name)
	}
	p := filepath.Join(t.Dir, rel)
	if !strings.HasSuffix(p, xzSuffix) {
		return os.ReadFile(p)
	}
	out, err := exec.Command("xz", "-dc", p).Output()
	if err != nil {
		return nil, fmt.Errorf("ipvsvm: xz -dc %s: %w (install xz-utils)", p, err)
	}
	return out, nil
}

func (t *ModuleTree) info(name string) (ModInfo, error) {
	b, err := t.Read(name)
	if err != nil {
		return ModInfo{}, err
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return ModInfo{}, fmt.Errorf("ipvsvm: module %s: %w", name, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return ModInfo{}, nil
	}
	data, err := sec.Data()
	if err != nil {
		return ModInfo{}, fmt.Errorf("ipvsvm: module %s: .modinfo: %w", name, err)
	}
	return ParseModInfo(data), nil
}

// LoadOrder returns the given modules and everything they depend on, each
// after its dependencies (hard ones, and soft "pre" ones present in the
// tree), each once.
func (t *ModuleTree) LoadOrder(names ...string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string) error
	visit = func(n string) error {
		n = modName(n)
		switch state[n] {
		case 1:
			return nil // a cycle: the kernel would refuse too; keep going
		case 2:
			return nil
		}
		state[n] = 1
		mi, err := t.info(n)
		if err != nil {
			return err
		}
		for _, s := range mi.SoftPre {
			if a, ok := softAliases[s]; ok {
				s = a
			}
			if _, ok := t.Path(s); ok {
				if err := visit(s); err != nil {
					return err
				}
			}
		}
		for _, d := range mi.Depends {
			if err := visit(d); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}
