package config

import "fmt"

// Load reads the configuration file at path and its includes. The
// diagnostics are warnings and errors in file order; the error is non-nil
// iff one of them is an Error (it wraps ErrInvalid and lists them) or the
// file cannot be read. The Config is returned even when invalid, for
// reporting.
func Load(path string) (*Config, []Diagnostic, error) {
	return LoadWith(path, Options{})
}

// LoadWith is Load with options.
func LoadWith(path string, opts Options) (*Config, []Diagnostic, error) {
	opts.fill()
	src, err := opts.ReadFile(path)
	if err != nil {
		d := Diagnostic{Pos: Pos{path, 0}, Keyword: "file", Severity: Error, Message: err.Error()}
		return nil, []Diagnostic{d}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ParseWith(path, src, opts)
}

// Parse reads a configuration held in memory; name is used in positions
// and includes are resolved relative to its directory.
func Parse(name string, src []byte) (*Config, []Diagnostic, error) {
	return ParseWith(name, src, Options{})
}

// ParseWith is Parse with options.
func ParseWith(name string, src []byte, opts Options) (*Config, []Diagnostic, error) {
	d := &diagSink{}
	tree := newTreeBuilder(d)
	lx := newLexer(opts, d, tree.line)
	lx.file(name, src, Pos{name, 0})
	tree.finish()
	cfg := &Config{Global: globalDefaults()}
	b := &builder{d: d, cfg: cfg, inst: map[*VRRPInstance]*instanceSeen{}, globalSeen: map[string]bool{},
		scripts: map[string]*VRRPScript{}, instances: map[string]*VRRPInstance{},
		syncGroupsByName: map[string]*SyncGroup{}, vsGroups: map[string]*VirtualServerGroup{}}
	if !d.aborted {
		b.top(&tree.root)
		b.finishGlobal()
		b.finishInstances()
		b.scriptSecurity()
		b.finishBGP()
	}
	cfg.Files = lx.files
	return cfg, d.list, d.result()
}
