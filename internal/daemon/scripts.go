package daemon

import (
	"log/slog"
	"sync"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/script"
)

// scriptGate checks the scripts of every configuration the daemon loads
// (start, reload, dry run) as keepalived does before it runs them
// (script.CheckConfig), logs what it found, and leaves out of the
// configuration the scripts that will not run: a disabled vrrp_script is
// neither run nor tracked, a disabled notify script is not run, a
// disabled MISC_CHECK is removed from its real server.
type scriptGate struct {
	log  *slog.Logger
	host script.Host

	mu sync.Mutex
	// disabled holds, for the last few configurations checked, the
	// disabled vrrp_scripts and why (a reload that is refused must not
	// lose the running configuration's).
	disabled map[*config.Config]map[string]string
	order    []*config.Config
}

// keepReports bounds scriptGate.disabled: the running configuration, a
// reload's and a dry run's.
const keepReports = 4

func newScriptGate(log *slog.Logger) *scriptGate {
	return &scriptGate{log: log, disabled: map[*config.Config]map[string]string{}}
}

// secure checks cfg, applies the outcome to it and returns the warnings
// to add to its diagnostics.
func (g *scriptGate) secure(cfg *config.Config) []config.Diagnostic {
	rep := script.CheckConfig(cfg, g.host)
	for _, n := range rep.Notes {
		g.log.Info(n)
	}
	rep.Apply()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.disabled[cfg] = rep.Scripts
	g.order = append(g.order, cfg)
	if len(g.order) > keepReports {
		delete(g.disabled, g.order[0])
		g.order = g.order[1:]
	}
	return rep.Diagnostics
}

// disabledScripts are cfg's disabled vrrp_scripts and why.
func (g *scriptGate) disabledScripts(cfg *config.Config) map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.disabled[cfg]
}

// read wraps a configuration reader with the check.
func (g *scriptGate) read(read func(string) (*config.Config, []config.Diagnostic, error)) func(string) (*config.Config, []config.Diagnostic, error) {
	return func(path string) (*config.Config, []config.Diagnostic, error) {
		cfg, diags, err := read(path)
		if err != nil || cfg == nil {
			return cfg, diags, err
		}
		return cfg, append(diags, g.secure(cfg)...), nil
	}
}
