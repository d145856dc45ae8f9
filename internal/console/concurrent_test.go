package console_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/internal/keyadmin"
)

// People use the console at the same time: one lists the keys while
// others open and change keys (each of which updates the shared index).
// Run with -race.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t)
	var ids []string
	for range 20 {
		ids = append(ids, h.issue(keyadmin.Fields{Name: ptr("web")}).ID)
	}
	lister, viewer, editor := h.signedIn(), h.signedIn(), h.signedIn()
	// send is safe in any goroutine: it reports with t.Errorf.
	send := func(u *user, method, path string, form url.Values, want int) {
		req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := u.client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Errorf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, b)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 30 {
			send(lister, "GET", "/keys", nil, http.StatusOK)
		}
	})
	wg.Go(func() {
		for i := range 30 {
			send(viewer, "GET", "/keys/"+ids[i%len(ids)], nil, http.StatusOK)
		}
	})
	wg.Go(func() {
		for i := range 10 {
			send(editor, "POST", "/keys/"+ids[i]+"/edit", url.Values{"csrf": {editor.csrf}, "tenant": {"acme"}, "name": {"renamed"}}, http.StatusSeeOther)
		}
	})
	wg.Wait()
}
