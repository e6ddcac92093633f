package sdnotify

import (
	"log/slog"
	"time"
)

// Service tells systemd (Type=notify) where a daemon is: ready, reloading,
// stopping, and alive through watchdog pings sent from the daemon's main
// loop, so a wedged loop gets the daemon restarted. Without $NOTIFY_SOCKET
// it does nothing. A failed notification is logged, never fatal.
type Service struct {
	n   *Notifier
	log *slog.Logger
	// Watchdog ticks at half of $WATCHDOG_USEC; nil when there is none.
	Watchdog <-chan time.Time
	stop     func()
}

// NewService is the Service of $NOTIFY_SOCKET and $WATCHDOG_USEC.
func NewService(log *slog.Logger) *Service {
	s := &Service{n: FromEnv(), log: log, stop: func() {}}
	iv, err := WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog disabled", "err", err)
	}
	if iv > 0 {
		t := time.NewTicker(iv / 2)
		s.Watchdog, s.stop = t.C, t.Stop
		log.Info("systemd watchdog on", "interval", iv)
	}
	return s
}

func (s *Service) send(what string, err error) {
	if err != nil {
		s.log.Warn("telling systemd failed", "what", what, "err", err)
	}
}

// Ready says the daemon serves; status is the line `systemctl status` shows.
func (s *Service) Ready(status string) { s.send("READY", s.n.Ready(status)) }

// Reloading says a reload started (Ready ends it).
func (s *Service) Reloading() { s.send("RELOADING", s.n.Reloading()) }

// Stopping says the daemon leaves, and stops the watchdog.
func (s *Service) Stopping() {
	s.send("STOPPING", s.n.Stopping("leaving gracefully"))
	s.stop()
}

// Ping answers a Watchdog tick.
func (s *Service) Ping() { s.send("WATCHDOG", s.n.Watchdog()) }
