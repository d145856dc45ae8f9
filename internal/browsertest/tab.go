package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Tab is one page in its own browser context: tabs share no cookies, storage
// or cache, so two tabs are two users. Its methods fail the test that made it
// (call them from that test's goroutine) and bound each step by
// ActionTimeout.
type Tab struct {
	t   testing.TB
	b   *Browser
	ctx context.Context

	mu        sync.Mutex
	mainFrame cdp.FrameID       // the target's id, which is its main frame's
	last      *network.Response // of the last main-frame document
	errs      []string
}

// NewTab opens a tab in a new browser context, closed (and its context
// disposed of) when t ends.
func (b *Browser) NewTab(t testing.TB) *Tab {
	t.Helper()
	tab := &Tab{t: t, b: b}
	ctx, cancel := chromedp.NewContext(b.ctx,
		chromedp.WithNewBrowserContext(),
		chromedp.WithListener(tab.listen),
	)
	tab.ctx = ctx
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("browsertest: closing a tab: %v", err)
		}
		cancel()
	})
	if err := startBounded(ctx, cancel); err != nil {
		t.Fatalf("browsertest: opening a tab: %v", err)
	}
	tab.mu.Lock()
	tab.mainFrame = cdp.FrameID(chromedp.FromContext(ctx).Target.TargetID)
	tab.mu.Unlock()
	return tab
}

// listen records main-frame document responses and errors the page reports.
// It runs in the tab's read loop: no commands, return fast.
func (tab *Tab) listen(ev any) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument && ev.FrameID == tab.mainFrame && tab.mainFrame != "" {
			tab.last = ev.Response
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		tab.errs = append(tab.errs, fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber+1))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			tab.errs = append(tab.errs, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
		}
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Level == log.EntryLevelError {
			tab.errs = append(tab.errs, fmt.Sprintf("%s: %s (%s)", e.Source, e.Text, e.URL))
		}
	}
}

// Run runs the actions in order, failing the test at the first error.
func (tab *Tab) Run(actions ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	Get(tab, chromedp.Steps(actions...))
}

// Get runs one action that returns a value, failing tab's test on error:
//
//	name := browsertest.Get(tab, chromedp.Value(chromedp.CSS("#name")))
func Get[T any](tab *Tab, a chromedp.Action[T]) T {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, ActionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tab.t.Fatalf("browsertest: %v", err)
	}
	return v
}

// TryText is the text of the element sel names, or "" and an error, which
// does not fail the test: for polling a page that may still be navigating
// (an element found on a page about to be replaced is gone a moment later).
func (tab *Tab) TryText(sel string) (string, error) {
	ctx, cancel := context.WithTimeout(tab.ctx, ActionTimeout)
	defer cancel()
	js := `(() => { const e = document.querySelector(` + strconv.Quote(sel) + `); return e ? e.textContent : ""; })()`
	return chromedp.Run(ctx, chromedp.Evaluate[string](js))
}

// Navigate loads url, waits for its load event and returns the document's
// response. An HTTP error status is returned, not a failure; a network error
// (refused, not resolved) fails the test.
func (tab *Tab) Navigate(url string) *network.Response {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, ActionTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		tab.t.Fatalf("browsertest: navigating to %s: %v", url, err)
	}
	return resp
}

// RunResponse runs actions that cause a navigation, such as a click on a
// link or a form's submit, waits until the new page has loaded and returns
// its document's response (after redirects).
func (tab *Tab) RunResponse(actions ...chromedp.Action[chromedp.Void]) *network.Response {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, ActionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		tab.t.Fatalf("browsertest: waiting for a page load: %v", err)
	}
	return resp
}

// Response is the response of the last document loaded into the main frame,
// however it was loaded (Navigate, a click, a script); nil before any.
func (tab *Tab) Response() *network.Response {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return tab.last
}

// Header is a header of Response(), matched case-insensitively; "" if
// absent. Set-Cookie is not among them: read Cookies instead.
func Header(resp *network.Response, name string) string {
	if resp == nil {
		return ""
	}
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// URL is the current page's address.
func (tab *Tab) URL() string {
	tab.t.Helper()
	return Get(tab, chromedp.Location())
}

// Text is the visible text of the first element matching the CSS selector,
// waiting (up to ActionTimeout) for one to exist.
func (tab *Tab) Text(sel string) string {
	tab.t.Helper()
	return Get(tab, chromedp.Text(chromedp.CSS(sel)))
}

// Screenshot writes a PNG of the whole page (beyond the viewport) to path,
// creating its directory.
func (tab *Tab) Screenshot(path string) {
	tab.t.Helper()
	png := Get(tab, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tab.t.Fatalf("browsertest: screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tab.t.Fatalf("browsertest: screenshot: %v", err)
	}
}

// Cookies are the cookies the browser would send to the current page (and
// its frames), with their flags: HTTPOnly, Secure, SameSite, Expires.
func (tab *Tab) Cookies() []*network.Cookie {
	tab.t.Helper()
	return Get(tab, func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
		return res.Cookies, err
	})
}

// Cookie is the current page's cookie with that name, or nil.
func (tab *Tab) Cookie(name string) *network.Cookie {
	tab.t.Helper()
	for _, c := range tab.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Errors are what the page reported as errors since the tab opened, in
// order: uncaught exceptions, console.error calls, and the browser's own
// error log entries, which include Content-Security-Policy violations and
// failed loads.
func (tab *Tab) Errors() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.errs...)
}
