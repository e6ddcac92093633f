package netlab

import (
	"fmt"
	"os"
	"path/filepath"
)

// nginxConf is an nginx configuration that keeps everything under one
// prefix directory and answers every request on port 80 with a name.
const nginxConf = `worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
events { worker_connections 512; }
http {
    access_log %[1]s/logs/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server {
        listen 80;
        location / {
            default_type text/plain;
            return 200 "%[2]s\n";
        }
    }
}
`

// Nginx is the setup of one nginx that answers every request on port 80
// with a name (the real server's, so a client sees who answered).
type Nginx struct {
	Dir  string // the prefix: nginx.conf, logs/, tmp/
	Conf string
}

// WriteNginx writes the configuration into dir (which must exist) for a
// server answering with name.
func WriteNginx(dir, name string) (Nginx, error) {
	g := Nginx{Dir: dir, Conf: filepath.Join(dir, "nginx.conf")}
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return g, fmt.Errorf("netlab: nginx: %w", err)
		}
	}
	if err := os.WriteFile(g.Conf, fmt.Appendf(nil, nginxConf, dir, name), 0o644); err != nil {
		return g, fmt.Errorf("netlab: nginx: %w", err)
	}
	return g, nil
}

// Args are nginx's arguments: this configuration, in the foreground.
func (g Nginx) Args() []string { return []string{"-c", g.Conf, "-p", g.Dir, "-g", "daemon off;"} }

// AccessLog is the path of the access log (one line a request).
func (g Nginx) AccessLog() string { return filepath.Join(g.Dir, "logs", "access.log") }
