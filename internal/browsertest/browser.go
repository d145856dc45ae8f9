// Package browsertest drives a real headless Chromium for tests of keygate's
// web pages: navigate, fill forms, read text and cookies, take screenshots and
// check accessibility with axe-core.
//
// The browser is $KEYGATE_CHROMIUM, else <repo>/.tools/chromium (linked by
// scripts/chromium.sh), else chromium or chromium-browser on $PATH; axe-core is
// $KEYGATE_AXE_JS, else <repo>/.tools/axe.min.js. Without them a test skips,
// or fails when $CI is set (as for Vault).
//
//	func TestLogin(t *testing.T) {
//		b := browsertest.New(t)
//		tab := b.NewTab(t)
//		tab.Navigate(srv.URL + "/login")
//		tab.Run(chromedp.SendKeys(chromedp.CSS("#user"), "ada"), chromedp.Submit(chromedp.CSS("form")))
//		if v := browsertest.Serious(tab.Axe()); len(v) > 0 {
//			t.Errorf("accessibility: %v", v)
//		}
//	}
//
// The browser reaches loopback only: every other host goes to a proxy that
// does not exist, and no host name but localhost resolves. Each Browser and
// Tab is closed by t.Cleanup, and leaves no goroutine behind (goleak).
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Environment variables that name the tools instead of the .tools/ links.
const (
	EnvChromium = "KEYGATE_CHROMIUM" // path of a chromium binary
	EnvAxe      = "KEYGATE_AXE_JS"   // path of axe-core's axe.min.js
)

// ActionTimeout bounds each Tab.Run (and so each helper), the start of the
// browser and the opening of a tab.
const ActionTimeout = 30 * time.Second

// closeTimeout bounds the graceful close of the browser in cleanup; after it
// the process is killed.
const closeTimeout = 10 * time.Second

// Browser is one headless Chromium process. Make tabs with NewTab.
type Browser struct {
	ctx         context.Context // the root chromedp context; owns the process
	allocCancel context.CancelFunc

	axeOnce sync.Once
	axeSrc  string
	axeErr  error
}

// New starts a headless Chromium for t and closes it when t ends. It skips t
// if no chromium is found, or fails it when $CI is set.
func New(t testing.TB) *Browser {
	t.Helper()
	bin := tool(t, "chromium", EnvChromium, findChromium)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), allocatorOptions(bin, t.TempDir())...)
	logs := &logger{t: t}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logs.logf))
	b := &Browser{ctx: ctx, allocCancel: allocCancel}
	t.Cleanup(func() {
		b.close(t, cancel)
		logs.stop()
	})

	// The first Do binds the process to ctx, so it must not get a timeout
	// of its own: a timer cancels ctx instead if the start takes too long.
	if err := startBounded(ctx, cancel); err != nil {
		t.Fatalf("browsertest: starting %s: %v", bin, err)
	}
	return b
}

// allocatorOptions are chromedp's defaults plus what the tests need: new
// headless mode, no sandbox (tests run as root in CI), no GPU, a profile in a
// test temp dir, and no network but loopback.
func allocatorOptions(bin, profile string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
		// Loopback only. Chromium never proxies loopback, so pages served
		// on 127.0.0.1 or localhost load directly; every other request goes
		// to this proxy, where nothing listens, and fails at once. The
		// proxy flag also overrides any proxy in the environment.
		chromedp.ProxyServer("http://127.0.0.1:9"),
		// And no DNS lookups, which a proxy would not stop for prefetches
		// ("*" matches IP literals too, hence the loopback exclusions).
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"),
		// Test servers are httptest.NewTLSServer with a self-signed
		// certificate; only loopback is reachable, so nothing else is trusted.
		chromedp.IgnoreCertErrors,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
	)
}

// startBounded runs the first (timeout-less) action on ctx, cancelling ctx
// with cancel if it has not finished after ActionTimeout.
func startBounded(ctx context.Context, cancel context.CancelFunc) error {
	timer := time.AfterFunc(ActionTimeout, cancel)
	err := chromedp.Do(ctx)
	if !timer.Stop() {
		return fmt.Errorf("no answer within %v: %w", ActionTimeout, errors.Join(err, context.DeadlineExceeded))
	}
	return err
}

// close shuts the browser down gracefully (bounded), then kills what is
// left and waits for the allocator's goroutines and temp dirs.
func (b *Browser) close(t testing.TB, cancel context.CancelFunc) {
	ctx, stop := context.WithTimeout(b.ctx, closeTimeout)
	defer stop()
	if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("browsertest: closing the browser: %v", err)
	}
	cancel()
	b.allocCancel()
}

// logger passes chromedp's error logs to t until stop: t.Logf panics once
// t has ended.
type logger struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (l *logger) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("browsertest: chromedp: "+format, args...)
	}
}

func (l *logger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// axe returns axe.min.js's source, read once per Browser.
func (b *Browser) axe(t testing.TB) string {
	t.Helper()
	path := tool(t, "axe.min.js", EnvAxe, nil)
	b.axeOnce.Do(func() {
		src, err := os.ReadFile(path)
		b.axeSrc, b.axeErr = string(src), err
	})
	if b.axeErr != nil {
		t.Fatalf("browsertest: reading axe-core: %v", b.axeErr)
	}
	return b.axeSrc
}

// tool finds a tool: $envVar, else <repo>/.tools/name, else fallback (may be
// nil). Without it t is skipped, or failed when $CI is set.
func tool(t testing.TB, name, envVar string, fallback func() string) string {
	t.Helper()
	path, err := findTool(name, envVar, fallback)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browsertest: %v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skipf("browsertest: %v", err)
	}
	return path
}

func findTool(name, envVar string, fallback func() string) (string, error) {
	if path := os.Getenv(envVar); path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%s: %w (install one with scripts/chromium.sh)", envVar, err)
		}
		return path, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, ".tools", name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if fallback != nil {
		if path := fallback(); path != "" {
			return path, nil
		}
	}
	return "", fmt.Errorf("no %s at %s: run scripts/chromium.sh (or set %s)", name, path, envVar)
}

// findChromium looks for Debian's and Ubuntu's names on $PATH.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// repoRoot walks up from the working directory to the directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
