package netlab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// nginxConf is an nginx configuration that keeps everything under one
// prefix directory (%[1]s) and answers every request on port 80 with a
// name (%[2]s); %[3]d is worker_connections, %[4]s the access log, %[5]s
// what follows "listen 80", %[6]s more location blocks.
const nginxConf = `worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
events { worker_connections %[3]d; }
http {
    access_log %[4]s;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server {
        listen 80%[5]s;
        location / {
            default_type text/plain;
            return 200 "%[2]s\n";
        }
%[6]s    }
}
`

// nginxBig is the location block of NginxOptions.Big.
const nginxBig = `        location = /big {
            root %s/www;
            limit_rate %s;
            default_type application/octet-stream;
        }
`

// NginxOptions change WriteNginx's configuration for a lab that loads
// nginx harder; the zero value is WriteNginx's.
type NginxOptions struct {
	Connections int  // worker_connections; 0: 512
	Backlog     int  // the listen backlog; 0: nginx's default
	NoAccessLog bool // access_log off: AccessLog then names no file
	// Big, when > 0, is the size of /big, a download sent at BigRate
	// (nginx's limit_rate, e.g. "10k") from www/big under the prefix.
	Big     int
	BigRate string
}

// Nginx is the setup of one nginx that answers every request on port 80
// with a name (the real server's, so a client sees who answered).
type Nginx struct {
	Dir  string // the prefix: nginx.conf, logs/, tmp/
	Conf string
}

// WriteNginx writes the configuration into dir (which must exist) for a
// server answering with name.
func WriteNginx(dir, name string) (Nginx, error) { return WriteNginxWith(dir, name, NginxOptions{}) }

// WriteNginxWith is WriteNginx with the changes o asks for.
func WriteNginxWith(dir, name string, o NginxOptions) (Nginx, error) {
	g := Nginx{Dir: dir, Conf: filepath.Join(dir, "nginx.conf")}
	conns, accessLog, listen, more := 512, g.AccessLog(), "", ""
	if o.Connections > 0 {
		conns = o.Connections
	}
	if o.NoAccessLog {
		accessLog = "off"
	}
	if o.Backlog > 0 {
		listen = fmt.Sprintf(" backlog=%d", o.Backlog)
	}
	dirs := []string{"logs", "tmp"}
	if o.Big > 0 {
		dirs = append(dirs, "www")
		more = fmt.Sprintf(nginxBig, dir, o.BigRate)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return g, fmt.Errorf("netlab: nginx: %w", err)
		}
	}
	if o.Big > 0 {
		if err := os.WriteFile(filepath.Join(dir, "www", "big"), bytes.Repeat([]byte("x"), o.Big), 0o644); err != nil {
			return g, fmt.Errorf("netlab: nginx: %w", err)
		}
	}
	conf := fmt.Appendf(nil, nginxConf, dir, name, conns, accessLog, listen, more)
	if err := os.WriteFile(g.Conf, conf, 0o644); err != nil {
		return g, fmt.Errorf("netlab: nginx: %w", err)
	}
	return g, nil
}

// Args are nginx's arguments: this configuration, in the foreground.
func (g Nginx) Args() []string { return []string{"-c", g.Conf, "-p", g.Dir, "-g", "daemon off;"} }

// AccessLog is the path of the access log (one line a request).
func (g Nginx) AccessLog() string { return filepath.Join(g.Dir, "logs", "access.log") }
