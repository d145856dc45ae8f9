package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

var keyPathRE = regexp.MustCompile(`^/keys/([0-9A-Za-z]{12})$`)

// issueByForm posts the new-key form and returns the new key's id and the
// raw key its page showed.
func (u *user) issueByForm(form url.Values) (id, rawKey string) {
	u.h.t.Helper()
	resp, body := u.post("/new", form)
	m := keyPathRE.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		u.h.t.Fatalf("POST /new = %d to %q, want 303 to /keys/ID: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	body = u.mustGet("/keys/" + m[1])
	rawKey = shownKey(body)
	if rawKey == "" {
		u.h.t.Fatalf("the new key's page does not show it:\n%s", body)
	}
	return m[1], rawKey
}

// recordOpts compare records but for the times keygate writes and the
// compiled form.
var recordOpts = cmp.Options{cmpopts.IgnoreUnexported(policy.Record{}), cmpopts.IgnoreFields(policy.Record{}, "UpdatedAt")}

// The form's fields become the key; its page shows the raw key once, to
// the person who issued it, and never again; no log line or URL has it.
func TestCreate(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	watcher := h.signedIn() // another person, looking at the same key
	id, rawKey := u.issueByForm(url.Values{
		"name": {"checkout"}, "tenant": {"acme"}, "owner": {"payments@acme.example"},
		"scopes": {"orders:read, orders:write"}, "expires_in": {"90d"}, "not_before": {"2027-03-02T00:00:00Z"},
		"allowed_cidrs": {"10.1.0.0/16 192.168.1.0/24"}, "allowed_hosts": {"api.acme.example"},
		"allowed_referrers": {"https://shop.acme.example"},
		"rate_limit":        {"100/s"}, "rate_burst": {"20"}, "quota": {"10000/day"},
		"global_rate_limit": {"6000/minute"}, "global_quota": {"1000000/day"},
		"headers": {"x-plan=gold\r\n x-team = payments \r\n"}, "metadata": {"cost_center=42"},
	})
	kid, err := mustFormat(t).Parse(rawKey)
	if err != nil || kid != id {
		t.Fatalf("the shown key %s parses to %q, %v; want id %s", policy.Redact(rawKey), kid, err, id)
	}
	hasher, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	want := &policy.Record{
		Hash: hasher.Hash(rawKey).String(), Name: "checkout", Tenant: "acme", Owner: "payments@acme.example",
		Status: "active", NotBefore: "2027-03-02T00:00:00Z", ExpiresAt: "2027-05-30T12:00:00Z",
		Scopes: []string{"orders:read", "orders:write"}, AllowedCIDRs: []string{"10.1.0.0/16", "192.168.1.0/24"},
		AllowedHosts: []string{"api.acme.example"}, AllowedReferrers: []string{"https://shop.acme.example"},
		Headers: map[string]string{"x-plan": "gold", "x-team": "payments"}, Metadata: map[string]string{"cost_center": "42"},
		RateLimit: &policy.RateLimit{Requests: 100, Per: "second", Burst: 20}, Quota: &policy.Quota{Requests: 10000, Per: "day"},
		GlobalRateLimit: &policy.RateLimit{Requests: 6000, Per: "minute"}, GlobalQuota: &policy.Quota{Requests: 1000000, Per: "day"},
		CreatedAt: "2027-03-01T12:00:00Z",
	}
	if diff := cmp.Diff(want, h.record(id), recordOpts); diff != "" {
		t.Errorf("issued record (-want +got):\n%s", diff)
	}
	for _, who := range []*user{u, watcher} {
		body := who.mustGet("/keys/" + id)
		if shownKey(body) != "" || strings.Contains(body, rawKey) {
			t.Errorf("the key page shows the raw key again")
		}
		if !strings.Contains(body, `<dd class="mono" id="key-id">`+id+`</dd>`) {
			t.Errorf("the key page does not show the key:\n%s", body)
		}
	}
	body := u.mustGet("/keys")
	if strings.Contains(body, rawKey) || !strings.Contains(body, `<tr data-id="`+id+`">`) {
		t.Errorf("the list does not show the new key, or shows its raw key:\n%s", body)
	}
	if !strings.Contains(h.logs.String(), `"action":"create","key_id":"`+id+`"`) {
		t.Errorf("the create is not logged:\n%s", h.logs.String())
	}
	h.noSecret(rawKey, u, watcher)
}

func mustFormat(t *testing.T) policy.Format {
	f, err := policy.NewFormat(policy.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Bad input answers 400 naming every bad field, keeps what was typed, and
// writes nothing.
func TestCreateBadInput(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	h.issue(keyadmin.Fields{})
	tests := []struct {
		name string
		form url.Values
		want []string
	}{
		{"bad rate", url.Values{"rate_limit": {"100/fortnight"}},
			[]string{`rate_limit: "100/fortnight": want REQUESTS/UNIT, e.g. 100/s, 6000/minute, 10000/day`}},
		{"both expiries", url.Values{"expires_in": {"90d"}, "expires_at": {"2028-01-01T00:00:00Z"}},
			[]string{"expires_in: give expires_in or expires_at, not both"}},
		{"bad header line", url.Values{"headers": {"x-plan=gold\nx-team payments"}}, []string{"headers: line 2: want NAME=VALUE"}},
		{"bad metadata line", url.Values{"metadata": {"=1"}}, []string{"metadata: line 1: want NAME=VALUE"}},
		{"tenant missing", url.Values{"tenant": {""}}, []string{`record field "tenant": required`}},
		{"bad times", url.Values{"expires_at": {"tomorrow"}, "not_before": {"2027-13-01"}},
			[]string{"expires_at: want an RFC 3339 time like 2027-01-02T15:04:05Z", "not_before: want an RFC 3339 time like 2027-01-02T15:04:05Z"}},
		{"zero times", url.Values{"expires_at": {"0001-01-01T00:00:00Z"}, "not_before": {"0001-01-01T00:00:00Z"}},
			[]string{"expires_at: the zero time reads as unset", "not_before: the zero time reads as unset"}},
		{"past expiry", url.Values{"expires_at": {"2027-02-01T00:00:00Z"}}, []string{"is not in the future"}},
		{"burst alone", url.Values{"rate_burst": {"5"}}, []string{"rate_burst: only with a rate_limit"}},
		{"bad burst", url.Values{"rate_limit": {"10/s"}, "rate_burst": {"0"}}, []string{"rate_burst: want a whole number >= 1"}},
		{"bad lifetime", url.Values{"expires_in": {"soon"}}, []string{`expires_in: "soon": want e.g. 90d, 12h or 1d12h`}},
		{"bad cidr", url.Values{"allowed_cidrs": {"10.0.0.0/33"}}, []string{`allowed_cidrs[0]`}},
		{"every problem at once", url.Values{"rate_limit": {"100/fortnight"}, "headers": {"nope"}, "expires_in": {"1d"}, "expires_at": {"2028-01-01T00:00:00Z"}},
			[]string{"rate_limit: ", "headers: line 1: want NAME=VALUE", "expires_in: give expires_in or expires_at, not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"name": {"typed-name"}, "tenant": {"acme"}}
			for k, v := range tt.form {
				form[k] = v
			}
			before, count := h.fileBytes(), h.keyCount()
			resp, body := u.post("/new", form)
			status(t, resp, body, http.StatusBadRequest, append([]string{"Nothing was written:", `name="name" value="typed-name"`}, tt.want...)...)
			if h.fileBytes() != before || h.keyCount() != count {
				t.Errorf("a refused create wrote the key file (%d keys, was %d)", h.keyCount(), count)
			}
		})
	}
}

// A key pasted into the wrong field of the form is not written to the log
// (RELIABILITY 10; form.go: "values are never echoed").
func TestCreatePastedKeyNotLogged(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	_, rawKey := u.issueByForm(url.Values{"tenant": {"acme"}})
	for _, field := range []string{"rate_limit", "quota", "global_rate_limit", "global_quota", "expires_in", "expires_at", "allowed_cidrs", "headers"} {
		resp, body := u.post("/new", url.Values{"tenant": {"acme"}, field: {rawKey}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a key pasted into %s = %d, want 400: %s", field, resp.StatusCode, body)
		}
	}
	h.noSecret(rawKey, u)
}

// The edit form is the whole new state: an emptied field is cleared, a
// removed header or metadata line removed, an emptied limit removed;
// saving it unchanged changes nothing.
func TestEdit(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	full := keyadmin.Fields{
		Name: ptr("checkout"), Owner: ptr("alice"), Scopes: ptr([]string{"orders:read", "orders:write"}),
		AllowedCIDRs: ptr([]string{"10.0.0.0/16"}), AllowedHosts: ptr([]string{"api.acme.example"}),
		AllowedReferrers: ptr([]string{"https://shop.acme.example"}),
		SetHeaders:       map[string]string{"x-plan": "gold", "x-team": "payments"}, SetMetadata: map[string]string{"a": "1", "b": "2"},
		NotBefore: ptr(t0.Add(time.Hour)), ExpiresAt: ptr(t0.Add(90 * 24 * time.Hour)),
		RateLimit: &policy.RateLimit{Requests: 100, Per: "second", Burst: 20}, Quota: &policy.Quota{Requests: 5000, Per: "day"},
		GlobalRateLimit: &policy.RateLimit{Requests: 60, Per: "minute"}, GlobalQuota: &policy.Quota{Requests: 100000, Per: "hour"},
	}
	tests := []struct {
		name   string
		change url.Values
		want   func(r *policy.Record)
	}{
		{"unchanged", nil, func(*policy.Record) {}},
		{"name emptied", url.Values{"name": {""}}, func(r *policy.Record) { r.Name = "" }},
		{"owner emptied", url.Values{"owner": {""}}, func(r *policy.Record) { r.Owner = "" }},
		{"scopes emptied", url.Values{"scopes": {""}}, func(r *policy.Record) { r.Scopes = nil }},
		{"scopes changed", url.Values{"scopes": {"orders:read"}}, func(r *policy.Record) { r.Scopes = []string{"orders:read"} }},
		{"cidrs emptied", url.Values{"allowed_cidrs": {""}}, func(r *policy.Record) { r.AllowedCIDRs = nil }},
		{"hosts and referrers emptied", url.Values{"allowed_hosts": {""}, "allowed_referrers": {""}},
			func(r *policy.Record) { r.AllowedHosts, r.AllowedReferrers = nil, nil }},
		{"a header line removed", url.Values{"headers": {"x-team=payments"}}, func(r *policy.Record) { delete(r.Headers, "x-plan") }},
		{"a header changed", url.Values{"headers": {"x-plan=silver\nx-team=payments"}}, func(r *policy.Record) { r.Headers["x-plan"] = "silver" }},
		{"headers emptied", url.Values{"headers": {""}}, func(r *policy.Record) { r.Headers = nil }},
		{"a metadata line removed", url.Values{"metadata": {"b=2"}}, func(r *policy.Record) { delete(r.Metadata, "a") }},
		{"expiry emptied", url.Values{"expires_at": {""}}, func(r *policy.Record) { r.ExpiresAt = "" }},
		{"not before emptied", url.Values{"not_before": {""}}, func(r *policy.Record) { r.NotBefore = "" }},
		{"expires in instead", url.Values{"expires_at": {""}, "expires_in": {"1d"}}, func(r *policy.Record) { r.ExpiresAt = "2027-03-02T12:00:00Z" }},
		{"rate limit emptied", url.Values{"rate_limit": {""}, "rate_burst": {""}}, func(r *policy.Record) { r.RateLimit = nil }},
		{"burst emptied", url.Values{"rate_burst": {""}}, func(r *policy.Record) { r.RateLimit.Burst = 0 }},
		{"limits emptied", url.Values{"rate_limit": {""}, "rate_burst": {""}, "quota": {""}, "global_rate_limit": {""}, "global_quota": {""}},
			func(r *policy.Record) { r.RateLimit, r.Quota, r.GlobalRateLimit, r.GlobalQuota = nil, nil, nil, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := h.issue(full).ID
			want := h.record(id)
			tt.want(want)
			form := formValues(t, u.mustGet("/keys/"+id+"/edit"))
			for k, v := range tt.change {
				form[k] = v
			}
			resp, body := u.post("/keys/"+id+"/edit", form)
			redirected(t, resp, body, "/keys/"+id)
			if diff := cmp.Diff(want, h.record(id), recordOpts); diff != "" {
				t.Errorf("record after the edit (-want +got):\n%s", diff)
			}
			if body := u.mustGet("/keys/" + id); !strings.Contains(body, "Key "+id+" updated.") {
				t.Errorf("no flash after the edit:\n%s", body)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		id := h.issue(full).ID
		before := h.fileBytes()
		form := formValues(t, u.mustGet("/keys/"+id+"/edit"))
		form.Set("tenant", "")
		form.Set("quota", "1/fortnight")
		resp, body := u.post("/keys/"+id+"/edit", form)
		status(t, resp, body, http.StatusBadRequest, "Nothing was written:", `quota: "1/fortnight"`)
		if h.fileBytes() != before {
			t.Error("a refused edit wrote the key file")
		}
		resp, body = u.post("/keys/nosuchkey123/edit", form)
		status(t, resp, body, http.StatusNotFound, "Updating key nosuchkey123:")
	})
}

var (
	inputRE    = regexp.MustCompile(`<input id="[^"]*" name="([a-z_]+)" value="([^"]*)"`)
	textareaRE = regexp.MustCompile(`(?s)<textarea id="[^"]*" name="([a-z_]+)" rows="\d+">(.*?)</textarea>`)
)

// formValues are the values a browser would post from the key form.
func formValues(t *testing.T, body string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range inputRE.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], m[2])
	}
	for _, m := range textareaRE.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], m[2])
	}
	if v.Get("tenant") == "" {
		t.Fatalf("no key form in:\n%s", body)
	}
	return v
}

// Revoking needs the confirmation; with it the key is revoked with its
// reason, and the pages say so.
func TestRevoke(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	id := h.issue(keyadmin.Fields{Name: ptr("web")}).ID
	before := h.fileBytes()
	for _, confirm := range []string{"", "no", "on"} {
		resp, body := u.post("/keys/"+id+"/revoke", url.Values{"confirm": {confirm}, "reason": {"leaked"}})
		status(t, resp, body, http.StatusBadRequest, "confirm: tick the box to confirm the revocation; nothing was changed")
	}
	if h.fileBytes() != before {
		t.Fatal("an unconfirmed revoke wrote the key file")
	}
	resp, body := u.post("/keys/"+id+"/revoke", url.Values{"confirm": {"yes"}, "reason": {" leaked in CI logs "}})
	redirected(t, resp, body, "/keys/"+id)
	rec := h.record(id)
	if rec.Status != policy.StatusRevoked || rec.RevokedReason != "leaked in CI logs" {
		t.Errorf("record after revoke: status %q, reason %q", rec.Status, rec.RevokedReason)
	}
	body = u.mustGet("/keys/" + id)
	for _, w := range []string{"Key " + id + " revoked:", `<dd id="key-status">revoked (leaked in CI logs)</dd>`} {
		if !strings.Contains(body, w) {
			t.Errorf("key page lacks %q:\n%s", w, body)
		}
	}
	body = u.mustGet("/keys")
	if !regexp.MustCompile(`<tr data-id="` + id + `">(?s:.)*?<td class="status">revoked</td>`).MatchString(body) {
		t.Errorf("the list does not show the key revoked:\n%s", body)
	}
	if ids := listedIDs(u.mustGet("/keys?status=revoked")); len(ids) != 1 || ids[0] != id {
		t.Errorf("status=revoked lists %v, want [%s]", ids, id)
	}
	if !strings.Contains(h.logs.String(), `"action":"revoke","key_id":"`+id+`"`) {
		t.Errorf("the revoke is not logged:\n%s", h.logs.String())
	}
}

// Rotating shows the new key once and leaves the old one working for the
// grace, pointing at its successor.
func TestRotate(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	tests := []struct {
		grace, wantExpiry string
	}{
		{"1h", "2027-03-01T13:00:00Z"},
		{"", "2027-03-02T12:00:00Z"}, // default 24h
		{"0s", "2027-03-01T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run("grace "+tt.grace, func(t *testing.T) {
			old := h.issue(keyadmin.Fields{Name: ptr("web"), Scopes: ptr([]string{"orders:read"})})
			resp, body := u.post("/keys/"+old.ID+"/rotate", url.Values{"grace": {tt.grace}})
			m := keyPathRE.FindStringSubmatch(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusSeeOther || m == nil || m[1] == old.ID {
				t.Fatalf("rotate = %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			newID := m[1]
			body = u.mustGet("/keys/" + newID)
			rawKey := shownKey(body)
			if kid, err := mustFormat(t).Parse(rawKey); err != nil || kid != newID {
				t.Fatalf("the rotated key's page shows %q (%v), want a key with id %s", policy.Redact(rawKey), err, newID)
			}
			if !strings.Contains(body, "New key (rotated from "+old.ID+")") || !strings.Contains(body, "Key "+old.ID+" rotated to "+newID) {
				t.Errorf("the new key's page does not say where it came from:\n%s", body)
			}
			if body := u.mustGet("/keys/" + newID); shownKey(body) != "" || strings.Contains(body, rawKey) {
				t.Error("a reload shows the rotated key again")
			}
			prev := h.record(old.ID)
			if prev.ExpiresAt != tt.wantExpiry || prev.RotatedTo != newID || prev.Status != policy.StatusActive {
				t.Errorf("old key: expires %q, rotated_to %q, status %q; want %s, %s, active", prev.ExpiresAt, prev.RotatedTo, prev.Status, tt.wantExpiry, newID)
			}
			if next := h.record(newID); next.Name != "web" || !cmp.Equal(next.Scopes, []string{"orders:read"}) || next.RotatedTo != "" {
				t.Errorf("new key's record = %+v, want the old key's policy", next)
			}
			if body := u.mustGet("/keys/" + old.ID); !strings.Contains(body, `<a class="mono" href="/keys/`+newID+`">`+newID+`</a>`) {
				t.Errorf("the old key's page does not link its successor:\n%s", body)
			}
			h.noSecret(rawKey, u)
		})
	}
	t.Run("refused", func(t *testing.T) {
		k := h.issue(keyadmin.Fields{})
		before, count := h.fileBytes(), h.keyCount()
		resp, body := u.post("/keys/"+k.ID+"/rotate", url.Values{"grace": {"soon"}})
		status(t, resp, body, http.StatusBadRequest, `grace: "soon": want e.g. 90d, 12h or 1d12h`)
		if h.fileBytes() != before {
			t.Error("a rotate refused for its grace wrote the key file")
		}
		if _, err := h.svc.Revoke(context.Background(), k.ID, ""); err != nil {
			t.Fatal(err)
		}
		before = h.fileBytes()
		resp, body = u.post("/keys/"+k.ID+"/rotate", nil)
		status(t, resp, body, http.StatusBadRequest, "key "+k.ID+" is revoked; only active keys rotate")
		if h.fileBytes() != before || h.keyCount() != count {
			t.Error("a refused rotate wrote the key file")
		}
	})
}

// Delete needs the confirmation, and force for an active key; a deleted
// key leaves the list.
func TestDelete(t *testing.T) {
	h := newHarness(t)
	active := h.issue(keyadmin.Fields{Name: ptr("web")}).ID
	revoked := h.issue(keyadmin.Fields{Name: ptr("old")}).ID
	forced := h.issue(keyadmin.Fields{Name: ptr("forced")}).ID
	if _, err := h.svc.Revoke(context.Background(), revoked, "done"); err != nil {
		t.Fatal(err)
	}
	u := h.signedIn() // loads the index
	if ids := listedIDs(u.mustGet("/keys")); len(ids) != 3 {
		t.Fatalf("list = %v, want 3 keys", ids)
	}
	before := h.fileBytes()
	resp, body := u.post("/keys/"+revoked+"/delete", nil)
	status(t, resp, body, http.StatusBadRequest, "confirm: tick the box to confirm the deletion; nothing was changed")
	resp, body = u.post("/keys/"+active+"/delete", url.Values{"confirm": {"yes"}})
	status(t, resp, body, http.StatusBadRequest, "key "+active+" is active: revoke it first, or force the delete to remove it while in use",
		`revoke it first, or tick "delete while active"`)
	if h.fileBytes() != before {
		t.Fatal("a refused delete wrote the key file")
	}
	for _, tt := range []struct {
		id   string
		form url.Values
	}{{revoked, url.Values{"confirm": {"yes"}}}, {forced, url.Values{"confirm": {"yes"}, "force": {"yes"}}}} {
		resp, body = u.post("/keys/"+tt.id+"/delete", tt.form)
		redirected(t, resp, body, "/keys")
		if _, err := h.svc.Get(context.Background(), tt.id); !errors.Is(err, keyadmin.ErrNotFound) {
			t.Errorf("Get of a deleted key = %v, want not found", err)
		}
		body = u.mustGet("/keys")
		if !strings.Contains(body, "Key "+tt.id+" deleted.") {
			t.Errorf("no flash after the delete:\n%s", body)
		}
		if slices.Contains(listedIDs(body), tt.id) {
			t.Errorf("the list still shows deleted key %s", tt.id)
		}
		resp, body = u.get("/keys/" + tt.id)
		status(t, resp, body, http.StatusNotFound)
	}
	if ids := listedIDs(u.mustGet("/keys")); len(ids) != 1 || ids[0] != active {
		t.Errorf("list = %v, want [%s]", ids, active)
	}
}

// A raw key typed where an id belongs is refused as not a key id, and
// never echoed in the page or the log.
func TestRawKeyInURLNotEchoed(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	id, rawKey := u.issueByForm(url.Values{"tenant": {"acme"}})
	before := h.fileBytes()
	tests := []struct {
		method, path string
		form         url.Values
	}{
		{"GET", "/keys/" + rawKey, nil},
		{"GET", "/keys/" + rawKey + "/edit", nil},
		{"POST", "/keys/" + rawKey + "/edit", url.Values{"tenant": {"acme"}}},
		{"POST", "/keys/" + rawKey + "/revoke", url.Values{"confirm": {"yes"}}},
		{"POST", "/keys/" + rawKey + "/revoke", nil},
		{"POST", "/keys/" + rawKey + "/rotate", nil},
		{"POST", "/keys/" + rawKey + "/delete", url.Values{"confirm": {"yes"}, "force": {"yes"}}},
		{"POST", "/keys/" + rawKey + "/delete", nil},
	}
	for _, tt := range tests {
		var resp *http.Response
		var body string
		if tt.method == "GET" {
			resp, body = u.get(tt.path)
		} else {
			resp, body = u.post(tt.path, tt.form)
		}
		status(t, resp, body, http.StatusBadRequest, "(not a key id)")
		if strings.Contains(body, rawKey) || strings.Contains(body, rawKey[3:]) {
			t.Errorf("%s %s echoes the raw key:\n%s", tt.method, policy.Redact(tt.path), body)
		}
	}
	if h.fileBytes() != before {
		t.Error("a request naming a raw key changed the key file")
	}
	if strings.Contains(h.logs.String(), rawKey[3:]) {
		t.Errorf("the raw key is in the log:\n%s", h.logs.String())
	}
	u.mustGet("/keys/" + id)
}

// A new key is shown by its own page, whatever page the person opens in
// between (another tab, another key): it is never lost unseen.
func TestNewKeyNotLostToAnotherKeyPage(t *testing.T) {
	h := newHarness(t)
	other := h.issue(keyadmin.Fields{Name: ptr("other")}).ID
	u := h.signedIn()
	resp, body := u.post("/new", url.Values{"tenant": {"acme"}})
	m := keyPathRE.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("POST /new = %d: %s", resp.StatusCode, body)
	}
	if body := u.mustGet("/keys/" + other); shownKey(body) != "" {
		t.Fatal("another key's page shows the new key")
	}
	u.mustGet("/keys")
	if body := u.mustGet("/keys/" + m[1]); shownKey(body) == "" {
		t.Error("the new key was lost: its page does not show it after another key's page was opened")
	}
}
