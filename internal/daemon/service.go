package daemon

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/xdpvip/xdpvip/internal/sdnotify"
)

// service tells systemd (Type=notify) where the daemon is: ready, reloading,
// stopping, and alive through watchdog pings sent from the main loop, so a
// wedged loop gets the daemon restarted. Without $NOTIFY_SOCKET it does
// nothing.
type service struct {
	n   *sdnotify.Notifier
	log *slog.Logger
	// watchdog ticks at half of $WATCHDOG_USEC; nil when there is none.
	watchdog <-chan time.Time
	stop     func()
}

func newService(log *slog.Logger) *service {
	s := &service{n: sdnotify.FromEnv(), log: log, stop: func() {}}
	iv, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog disabled", "err", err)
	}
	if iv > 0 {
		t := time.NewTicker(iv / 2)
		s.watchdog, s.stop = t.C, t.Stop
		log.Info("systemd watchdog on", "interval", iv)
	}
	return s
}

func (s *service) send(what string, err error) {
	if err != nil {
		s.log.Warn("telling systemd failed", "what", what, "err", err)
	}
}

func (s *service) ready(d *Daemon) {
	s.send("READY", s.n.Ready(d.summary()))
}

func (s *service) reloading() { s.send("RELOADING", s.n.Reloading()) }

func (s *service) stopping() {
	s.send("STOPPING", s.n.Stopping("leaving gracefully"))
	s.stop()
}

func (s *service) ping() { s.send("WATCHDOG", s.n.Watchdog()) }

// summary is the one-line status `systemctl status` shows.
func (d *Daemon) summary() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("%d VRRP instance(s), %d virtual server(s), dataplane %s, %d reload(s)",
		len(d.instances), len(d.cfg.VirtualServers), d.planes.name(), d.reloads)
}
