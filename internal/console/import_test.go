package console_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/keyadmin"
)

// An import file (README "Imported keys"): one raw key, one known only by
// its SHA-256.
const (
	legacyRaw    = "legacy-7c1e9b0d4a2f48e6b3d5c8a1f0e2d4b6"
	legacyHashed = "669ea57322eb4b1a754f96f78d487f4d2a9f26cf0b024a16bbd7674a547c3c35"
	importYAML   = "keys:\n  - key: \"" + legacyRaw + "\"\n    tenant: acme\n    name: legacy-web\n    scopes: [orders:read]\n" +
		"  - sha256: \"" + legacyHashed + "\"\n    tenant: globex\n    name: billing\n    expires_at: \"2027-06-30T00:00:00Z\"\n"
)

var (
	pendingRE   = regexp.MustCompile(`<input type="hidden" name="apply" value="([^"]+)">`)
	importRowRE = regexp.MustCompile(`<tr><td class="mono"><a href="/keys/([0-9A-Za-z]{12})">[0-9A-Za-z]{12}</a></td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>`)
)

// importRows are a report's rows as "id tenant name outcome".
func importRows(body string) []string {
	var out []string
	for _, m := range importRowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.Join(m[1:], " "))
	}
	return out
}

// preview uploads data (pasted, or as a multipart file) and returns the
// page and the pending id.
func (u *user) preview(data string, asFile bool) (*http.Response, string, string) {
	u.h.t.Helper()
	if !asFile {
		resp, body := u.post("/import", url.Values{"text": {data}})
		return resp, body, pendingOf(body)
	}
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("csrf", u.csrf)
	fw, _ := w.CreateFormFile("file", "import.yaml")
	_, _ = fw.Write([]byte(data))
	_ = w.WriteField("text", "")
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, u.h.srv.URL+"/import", &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", u.h.srv.URL)
	resp, body := u.do(req)
	return resp, body, pendingOf(body)
}

func pendingOf(body string) string {
	if m := pendingRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// Import is a dry-run preview (nothing written), then an apply of the
// server's copy by its pending id, once. The raw key in the file appears
// in no page, URL or log line.
func TestImport(t *testing.T) {
	for _, asFile := range []bool{false, true} {
		t.Run(map[bool]string{false: "pasted", true: "file"}[asFile], func(t *testing.T) {
			h := newHarness(t)
			u := h.signedIn()
			h.issue(keyadmin.Fields{Name: ptr("existing")})
			var pages []string
			before := h.fileBytes()
			resp, body, pending := u.preview(importYAML, asFile)
			pages = append(pages, body)
			status(t, resp, body, http.StatusOK, "Preview: nothing written yet")
			entries, err := h.svc.ParseImport([]byte(importYAML))
			if err != nil {
				t.Fatal(err)
			}
			idRaw, idHashed := entries[0].ID, entries[1].ID
			want := []string{idRaw + " acme legacy-web checked", idHashed + " globex billing checked"}
			if got := importRows(body); !slices.Equal(got, want) || pending == "" {
				t.Fatalf("preview rows %q, pending %q; want %q and an id", got, pending, want)
			}
			if h.fileBytes() != before {
				t.Fatal("the preview wrote the key file")
			}

			resp, body = u.post("/import", url.Values{"apply": {pending}})
			pages = append(pages, body)
			status(t, resp, body, http.StatusOK, "<h2>Imported</h2>")
			want = []string{idRaw + " acme legacy-web imported", idHashed + " globex billing imported"}
			if got := importRows(body); !slices.Equal(got, want) || pendingOf(body) != "" {
				t.Errorf("applied rows %q; want %q and no pending import", got, want)
			}
			if n := h.keyCount(); n != 3 {
				t.Errorf("%d keys after the import, want 3", n)
			}
			if rec := h.record(idRaw); !rec.Imported || rec.Tenant != "acme" || rec.Name != "legacy-web" {
				t.Errorf("imported record = %+v", rec)
			}
			list := u.mustGet("/keys")
			pages = append(pages, list)
			if ids := listedIDs(list); !slices.Contains(ids, idRaw) || !slices.Contains(ids, idHashed) {
				t.Errorf("the list does not show the imported keys: %v", ids)
			}

			before = h.fileBytes()
			resp, body = u.post("/import", url.Values{"apply": {pending}})
			pages = append(pages, body)
			status(t, resp, body, http.StatusConflict, "the checked upload is gone (applied, or replaced by another): upload it again")
			if h.fileBytes() != before {
				t.Error("a second apply wrote the key file")
			}
			for _, p := range append(pages, u.mustGet("/keys/"+idRaw)) {
				if strings.Contains(p, legacyRaw) {
					t.Errorf("a page shows the imported raw key:\n%s", p)
				}
			}
			h.noSecret(legacyRaw, u)
		})
	}
}

// Applying an id that is not the pending import is refused, and does not
// throw away the import that is pending.
func TestImportApplyOtherID(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	_, _, first := u.preview(importYAML, false)
	_, _, second := u.preview(importYAML, false)
	if first == "" || second == "" || first == second {
		t.Fatalf("pending ids %q, %q", first, second)
	}
	resp, body := u.post("/import", url.Values{"apply": {first}})
	status(t, resp, body, http.StatusConflict, "the checked upload is gone (applied, or replaced by another)")
	resp, body = u.post("/import", url.Values{"apply": {second}})
	status(t, resp, body, http.StatusOK, "<h2>Imported</h2>")
	if n := h.keyCount(); n != 2 {
		t.Errorf("%d keys after applying the pending import, want 2", n)
	}
}

// A bad file answers 400 naming each entry's problems, quoting no key, and
// writes nothing; there is then nothing pending to apply.
func TestImportBadFile(t *testing.T) {
	h := newHarness(t)
	u := h.signedIn()
	h.issue(keyadmin.Fields{})
	tests := []struct {
		name, data string
		want       []string
	}{
		{"fields", "keys:\n  - key: \"" + legacyRaw + "\"\n    tenant: acme\n    scopez: [a]\n  - sha256: \"" + legacyHashed + "\"\n",
			[]string{"nothing imported", "keys[0]", "scopez", "keys[1]", `"tenant": required`}},
		{"bad record", "keys:\n  - key: \"" + legacyRaw + "\"\n    tenant: acme\n    allowed_cidrs: [10.0.0.0/33]\n",
			[]string{"keys[0]", "allowed_cidrs[0]"}},
		{"not YAML", "keys:\n  - key: \"" + legacyRaw + "\n    tenant: [\n", []string{"import file: not valid YAML or JSON near line"}},
		{"a keygate key", "keys:\n  - key: \"kg_" + strings.Repeat("A", 50) + "\"\n    tenant: acme\n", []string{"keys[0]"}},
		{"empty", "  \n", []string{"file: choose an import file (YAML, as for keygate keys import) or paste its text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.fileBytes()
			resp, body, pending := u.preview(tt.data, false)
			status(t, resp, body, http.StatusBadRequest, tt.want...)
			if pending != "" || strings.Contains(body, "Preview") {
				t.Errorf("a bad file was previewed:\n%s", body)
			}
			if strings.Contains(body, legacyRaw) || strings.Contains(body, strings.Repeat("A", 40)) {
				t.Errorf("the page quotes a key from the file:\n%s", body)
			}
			if h.fileBytes() != before {
				t.Error("a bad import wrote the key file")
			}
		})
	}
	h.noSecret(legacyRaw, u)
	if n := h.keyCount(); n != 1 {
		t.Errorf("%d keys, want 1", n)
	}
}
