package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real nginx and Caddy in front of `keygate serve --http-addr`, for
// proxy_e2e_test.go. Each runs the config file users copy from envoy/.
// The binaries are $KEYGATE_NGINX_BIN / $KEYGATE_CADDY_BIN, else .tools/
// (scripts/proxies.sh), else PATH; without one, its test skips locally and
// fails when $CI is set.

const (
	proxyStartTimeout = 15 * time.Second
	proxyStartTries   = 3            // a free port can be taken between probe and bind
	proxyLogMark      = "/v1/orders" // in every access log line of the tests' requests
)

// upstream is the protected service: it records the headers of every
// request that reached it.
type upstream struct {
	addr string // host:port
	mu   sync.Mutex
	seen []*http.Request
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(r.Context()))
		u.mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(srv.Close)
	u.addr = strings.TrimPrefix(srv.URL, "http://")
	return u
}

// count is the number of requests that reached the upstream.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[len(u.seen)-1]
}

// proxy is a proxy running as a child process.
type proxy struct {
	name string
	base string // http://127.0.0.1:PORT
	dir  string // config and log files
	out  *syncBuffer
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// proxyBinary finds a proxy binary or skips t (fails it when $CI is set).
func proxyBinary(t *testing.T, name, envVar string) string {
	t.Helper()
	bin, err := findProxy(name, envVar)
	if err == nil && name == "nginx" {
		out, _ := exec.Command(bin, "-V").CombinedOutput()
		if !strings.Contains(string(out), "--with-http_auth_request_module") {
			err = fmt.Errorf("%s lacks the auth_request module", bin)
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skip(err)
	}
	return bin
}

func findProxy(name, envVar string) (string, error) {
	if bin := os.Getenv(envVar); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s: %w", envVar, err)
		}
		return bin, nil
	}
	// go test runs in the package directory, two below the repo root.
	candidates := []string{filepath.Join("..", "..", ".tools", name)}
	if p, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/sbin/"+name) // not on a non-root PATH
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("no %s binary: run scripts/proxies.sh or set %s", name, envVar)
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProxy runs setup(listenAddr) for a fresh port, starts the command it
// returns and waits until the proxy answers HTTP, retrying on a new port if
// that one was taken meanwhile. The proxy is killed at cleanup, which then
// checks its output and log files for keys.
func startProxy(t *testing.T, name string, keys func() []string, setup func(listen string) *exec.Cmd) *proxy {
	t.Helper()
	var err error
	for try := 0; try < proxyStartTries; try++ {
		listen := freeAddr(t)
		p := &proxy{name: name, base: "http://" + listen, out: &syncBuffer{}, done: make(chan struct{})}
		p.cmd = setup(listen)
		p.dir = p.cmd.Dir
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		p.cmd.SysProcAttr = childProcAttr()
		if err = p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		if err = p.waitAnswering(); err == nil {
			t.Cleanup(func() { p.stop(t, keys) })
			return p
		}
		p.kill()
		if !strings.Contains(p.logs(), "address already in use") {
			break
		}
		t.Logf("%s: %s was taken; retrying on another port", name, listen)
	}
	t.Fatalf("%s did not start: %v", name, err)
	return nil
}

// waitAnswering polls the proxy until it answers any HTTP request.
func (p *proxy) waitAnswering() error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(proxyStartTimeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(p.base + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited: %s\n%s", p.cmd.ProcessState, redact(p.logs()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("not answering within %s\n%s", proxyStartTimeout, redact(p.logs()))
}

func (p *proxy) kill() {
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// logs is everything the proxy printed and wrote to *.log in its dir.
func (p *proxy) logs() string {
	var b strings.Builder
	b.WriteString(p.out.String())
	files, _ := filepath.Glob(filepath.Join(p.dir, "*.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			b.WriteString(err.Error())
		}
		b.Write(data)
	}
	return b.String()
}

func (p *proxy) stop(t *testing.T, keys func() []string) {
	p.kill()
	logs := p.logs()
	if !strings.Contains(logs, proxyLogMark) {
		t.Errorf("%s logged no access to %s: the raw-key scan below would prove nothing", p.name, proxyLogMark)
	}
	for _, k := range keys() {
		if strings.Contains(logs, k) {
			t.Errorf("%s logs contain a raw key", p.name)
		}
	}
	if keyShape.MatchString(logs) {
		t.Errorf("%s logs contain something shaped like a raw key", p.name)
	}
}

// proxyClientIP is the loopback address the test client connects from; the
// proxies connect to keygate from 127.0.0.1, so keygate can tell the client
// from the proxy.
const proxyClientIP = "127.0.0.2"

// clientDialer connects from proxyClientIP.
var clientDialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxyClientIP)}, Timeout: 5 * time.Second}

// clientRequest is a request the test client sends through the proxy.
type clientRequest struct {
	method, path string            // GET and /v1/orders if ""
	host         string            // Host header if not ""
	headers      map[string]string // set canonically
	raw          http.Header       // header lines sent as they are written, repeated or with underscores
}

// do sends r through the proxy from proxyClientIP (with a small body unless
// GET) and returns the response and its body.
func (p *proxy) do(t *testing.T, r clientRequest) (*http.Response, string) {
	t.Helper()
	method, path := cmp.Or(r.method, http.MethodGet), cmp.Or(r.path, "/v1/orders")
	var reqBody io.Reader
	if method != http.MethodGet {
		reqBody = strings.NewReader(`{"item":"x"}`)
	}
	req, err := http.NewRequest(method, p.base+path, reqBody)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	for k, vs := range r.raw {
		req.Header[k] = append(req.Header[k], vs...)
	}
	if r.host != "" {
		req.Host = r.host
	}
	tr := &http.Transport{DialContext: clientDialer.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", p.name, redact(err.Error()))
	}
	return readResponse(t, p.name, resp)
}

// doRaw writes request (CRLF line ends, the blank line included) to the
// proxy from proxyClientIP, for request lines net/http does not send, and
// returns the response and its body.
func (p *proxy) doRaw(t *testing.T, request string) (*http.Response, string) {
	t.Helper()
	conn, err := clientDialer.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return readResponse(t, p.name, resp)
}

func readResponse(t *testing.T, name string, resp *http.Response) (*http.Response, string) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading body: %v", name, err)
	}
	return resp, string(body)
}

// nginxMain wraps envoy/nginx/keygate.conf: every path nginx writes is in
// the temp dir (%[1]s), not under /var.
const nginxMain = `pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/keygate.conf;
}
`

var leftPlaceholder = regexp.MustCompile(`__[A-Z]+__`)

// startNginx runs envoy/nginx/keygate.conf in the foreground, one process
// (no workers, so no user switch), with its placeholders replaced.
func startNginx(t *testing.T, keys func() []string, keygate, up string) *proxy {
	t.Helper()
	bin := proxyBinary(t, "nginx", "KEYGATE_NGINX_BIN")
	conf := readRepoFile(t, "envoy/nginx/keygate.conf")
	return startProxy(t, "nginx", keys, func(listen string) *exec.Cmd {
		dir := t.TempDir()
		c := strings.NewReplacer("__LISTEN__", listen, "__KEYGATE__", keygate, "__UPSTREAM__", up).Replace(conf)
		if m := leftPlaceholder.FindString(c); m != "" {
			t.Fatalf("envoy/nginx/keygate.conf: placeholder %s not replaced", m)
		}
		writeTestFile(t, filepath.Join(dir, "keygate.conf"), c)
		writeTestFile(t, filepath.Join(dir, "nginx.conf"), fmt.Sprintf(nginxMain, dir))
		cmd := exec.Command(bin, "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"),
			"-e", filepath.Join(dir, "error.log"), "-g", "daemon off; master_process off;")
		cmd.Dir = dir
		return cmd
	})
}

// startCaddy runs envoy/caddy/Caddyfile unchanged: its addresses are
// environment placeholders. Admin is off, HOME and XDG dirs are private. The
// site answers for 127.0.0.1 and api.example.com on the test's port (one
// listener), so requests naming api.example.com reach forward_auth as they
// would on a real site of that name.
func startCaddy(t *testing.T, keys func() []string, keygate, up string) *proxy {
	t.Helper()
	bin := proxyBinary(t, "caddy", "KEYGATE_CADDY_BIN")
	conf := readRepoFile(t, "envoy/caddy/Caddyfile")
	return startProxy(t, "caddy", keys, func(listen string) *exec.Cmd {
		dir := t.TempDir()
		writeTestFile(t, filepath.Join(dir, "Caddyfile"), conf)
		cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
		cmd.Dir = dir
		cmd.Env = []string{
			"HOME=" + dir, "XDG_CONFIG_HOME=" + dir + "/config", "XDG_DATA_HOME=" + dir + "/data",
			"KEYGATE_SITE=http://" + listen + ", http://" + net.JoinHostPort(proxySiteHost, portOf(listen)),
			"KEYGATE_HTTP_ADDR=" + keygate, "KEYGATE_UPSTREAM=" + up,
			"CADDY_ADMIN=off", "CADDY_BIND=127.0.0.1",
		}
		return cmd
	})
}

// proxySiteHost is the host name the proxied API answers for besides
// 127.0.0.1.
const proxySiteHost = "api.example.com"

func portOf(hostport string) string {
	_, port, _ := net.SplitHostPort(hostport)
	return port
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
