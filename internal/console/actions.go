package console

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// Every action runs keyadmin with the person's own credentials and is
// logged with who did it. A refusal (bad input, Vault's policy) re-renders
// with the message; nothing is half-done that keyadmin would not leave so.

func (c *Console) logAction(s *session, action, keyID string, err error, extra ...any) {
	args := append([]any{"action", action, "key_id", keyID, "who", s.grant.Who.Name, "entity_id", s.grant.Who.EntityID}, extra...)
	if err != nil {
		c.cfg.Log.Warn("console: action refused", append(args, "err", policy.Redact(err.Error()))...) // a pasted key is not logged
		return
	}
	c.cfg.Log.Info("console: action", args...)
}

func (c *Console) flash(s *session, msg string) {
	s.mu.Lock()
	s.flash = msg
	s.mu.Unlock()
}

func warnings(ws []error) string {
	var b []string
	for _, w := range ws {
		b = append(b, "Warning: "+w.Error())
	}
	return strings.Join(b, " ")
}

type formData struct {
	F      keyForm
	Edit   bool
	ID     string
	Errors []string
}

func (c *Console) newKeyPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "form", "New key", formData{})
}

func errorLines(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func (c *Console) newKey(w http.ResponseWriter, r *http.Request, s *session) {
	f := formOf(r.PostForm)
	fields, err := f.fields(c.cfg.Now())
	if err == nil {
		var k *keyadmin.Issued
		k, err = s.grant.Admin.Issue(r.Context(), fields)
		if err == nil {
			c.logAction(s, "create", k.ID, nil, "tenant", k.Record.Tenant)
			c.index.put(k.ID, &keyadmin.Key{ID: k.ID, Record: k.Record})
			s.setShown(&shownKey{ID: k.ID, Key: k.RawKey, What: "issued"})
			http.Redirect(w, r, "/keys/"+k.ID, http.StatusSeeOther)
			return
		}
	}
	c.logAction(s, "create", "", err)
	status, _ := explain(err)
	c.render(w, r, s, status, "form", "New key", formData{F: f, Errors: errorLines(err)})
}

func (c *Console) editPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	k, err := s.grant.Admin.Get(r.Context(), id)
	if err != nil {
		c.renderError(w, r, s, "Reading key "+safeID(id), err)
		return
	}
	c.render(w, r, s, http.StatusOK, "form", "Edit key "+id, formData{F: formFromRecord(k.Record), Edit: true, ID: id})
}

func (c *Console) edit(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	k, err := s.grant.Admin.Get(r.Context(), id)
	if err != nil {
		c.renderError(w, r, s, "Updating key "+safeID(id), err)
		return
	}
	orig := formFromRecord(k.Record)
	f := formOf(r.PostForm)
	f.editing, f.origHeaders, f.origMeta = true, orig.origHeaders, orig.origMeta
	fields, err := f.fields(c.cfg.Now())
	if err == nil {
		var ch *keyadmin.Changed
		ch, err = s.grant.Admin.Modify(r.Context(), id, fields)
		if err == nil {
			c.logAction(s, "update", id, nil)
			c.index.put(id, &keyadmin.Key{ID: id, Record: ch.Record})
			c.flash(s, "Key "+id+" updated. "+warnings(ch.Warnings))
			http.Redirect(w, r, "/keys/"+id, http.StatusSeeOther)
			return
		}
	}
	c.logAction(s, "update", id, err)
	status, _ := explain(err)
	c.render(w, r, s, status, "form", "Edit key "+id, formData{F: f, Edit: true, ID: id, Errors: errorLines(err)})
}

func (c *Console) revoke(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, s, http.StatusBadRequest, "error", "Revoke not confirmed",
			errorData{Action: "Revoking key " + safeID(id), Message: "confirm: tick the box to confirm the revocation; nothing was changed"})
		return
	}
	ch, err := s.grant.Admin.Revoke(r.Context(), id, reason)
	c.logAction(s, "revoke", safeID(id), err, "reason", reason)
	if err != nil {
		c.renderError(w, r, s, "Revoking key "+safeID(id), err)
		return
	}
	c.index.put(id, &keyadmin.Key{ID: id, Record: ch.Record})
	c.flash(s, "Key "+id+" revoked: it is denied as soon as replicas read the change journal. "+warnings(ch.Warnings))
	http.Redirect(w, r, "/keys/"+id, http.StatusSeeOther)
}

func (c *Console) rotate(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	grace := 24 * time.Hour
	if g := strings.TrimSpace(r.PostFormValue("grace")); g != "" {
		d, err := parseGrace(g)
		if err != nil {
			c.render(w, r, s, http.StatusBadRequest, "error", "Rotate failed", errorData{Action: "Rotating key " + safeID(id), Message: "grace: " + err.Error()})
			return
		}
		grace = d
	}
	rot, err := s.grant.Admin.Rotate(r.Context(), id, grace)
	if rot != nil && rot.ID != "" {
		c.index.put(rot.ID, &keyadmin.Key{ID: rot.ID, Record: rot.Record})
		s.setShown(&shownKey{ID: rot.ID, Key: rot.RawKey, What: "rotated from " + id})
		if rot.Previous != nil {
			c.index.put(id, &keyadmin.Key{ID: id, Record: rot.Previous})
		}
	}
	c.logAction(s, "rotate", safeID(id), err, "grace", grace.String())
	if err != nil {
		var re *keyadmin.RotateError
		if errors.As(err, &re) && rot != nil && rot.ID != "" { // the new key exists: show it, and the problem
			c.flash(s, fmt.Sprintf("New key %s was issued, but old key %s was NOT changed: %v. Revoke or edit %s yourself.", rot.ID, id, err, id))
			http.Redirect(w, r, "/keys/"+rot.ID, http.StatusSeeOther)
			return
		}
		c.renderError(w, r, s, "Rotating key "+safeID(id), err)
		return
	}
	c.flash(s, fmt.Sprintf("Key %s rotated to %s; %s keeps working for %s. %s", id, rot.ID, id, grace, warnings(rot.Warnings)))
	http.Redirect(w, r, "/keys/"+rot.ID, http.StatusSeeOther)
}

// parseGrace is a lifetime, or zero ("0", "0s"): keyadmin.Rotate allows
// retiring the old key at once, as `keygate keys rotate --grace 0` does.
func parseGrace(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d == 0 {
		return 0, nil
	}
	return keyadmin.ParseLifetime(s)
}

func (c *Console) deleteKey(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, s, http.StatusBadRequest, "error", "Delete not confirmed",
			errorData{Action: "Deleting key " + safeID(id), Message: "confirm: tick the box to confirm the deletion; nothing was changed"})
		return
	}
	d, err := s.grant.Admin.Delete(r.Context(), id, r.PostFormValue("force") == "yes")
	c.logAction(s, "delete", safeID(id), err)
	if err != nil {
		if errors.Is(err, keyadmin.ErrNeedsForce) {
			err = fmt.Errorf("%w: the key is active; revoke it first, or tick \"delete while active\"", err)
		}
		c.renderError(w, r, s, "Deleting key "+safeID(id), err)
		return
	}
	c.index.put(id, nil)
	msg := "Key " + id + " deleted."
	if d.RestoreHint != "" {
		msg += " To restore it: " + d.RestoreHint
	}
	c.flash(s, msg+" "+warnings(d.Warnings))
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

type importData struct {
	Report  *keyadmin.ImportReport
	DryRun  bool
	Errors  []string
	Pending string // id of the checked upload, applied by the next POST
}

func (c *Console) importPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "import", "Import keys", importData{})
}

// importKeys: an upload is parsed and dry-run (nothing written), kept in
// the session, and applied only by a second POST naming it. The upload may
// hold raw keys: it never leaves the server, nor is it echoed.
func (c *Console) importKeys(w http.ResponseWriter, r *http.Request, s *session) {
	if id := r.PostFormValue("apply"); id != "" {
		s.mu.Lock()
		p := s.pending
		if p != nil && p.id == id { // applied once; another id leaves it pending
			s.pending = nil
		}
		s.mu.Unlock()
		if p == nil || p.id != id {
			c.render(w, r, s, http.StatusConflict, "import", "Import keys", importData{Errors: []string{"the checked upload is gone (applied, or replaced by another): upload it again"}})
			return
		}
		rep, err := s.grant.Admin.Import(r.Context(), p.entries, false)
		c.logAction(s, "import", "", err, "entries", len(p.entries))
		d := importData{Report: rep}
		status := http.StatusOK
		if err != nil {
			status, _ = explain(err)
			d.Errors = errorLines(err)
		}
		if rep != nil {
			for _, row := range rep.Rows {
				if row.Outcome == keyadmin.OutcomeImported {
					if k, err := s.grant.Admin.Get(r.Context(), row.ID); err == nil {
						c.index.put(row.ID, k)
					}
				}
			}
			if msg := warnings(rep.Warnings); msg != "" {
				d.Errors = append(d.Errors, msg)
			}
		}
		c.render(w, r, s, status, "import", "Import keys", d)
		return
	}
	data, err := upload(r)
	if err != nil {
		c.render(w, r, s, http.StatusBadRequest, "import", "Import keys", importData{Errors: []string{err.Error()}})
		return
	}
	entries, err := s.grant.Admin.ParseImport(data)
	if err != nil {
		c.render(w, r, s, http.StatusBadRequest, "import", "Import keys", importData{Errors: errorLines(err)})
		return
	}
	rep, err := s.grant.Admin.Import(r.Context(), entries, true)
	if err != nil {
		status, _ := explain(err)
		c.render(w, r, s, status, "import", "Import keys", importData{Errors: errorLines(err)})
		return
	}
	id, err := randomToken()
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.pending = &pendingImport{id: id, entries: entries}
	s.mu.Unlock()
	c.render(w, r, s, http.StatusOK, "import", "Import keys", importData{Report: rep, DryRun: true, Pending: id})
}

type pendingImport struct {
	id      string
	entries []policy.ImportEntry
}

// upload reads the import file (multipart "file") or the pasted text.
func upload(r *http.Request) ([]byte, error) {
	if err := r.ParseMultipartForm(maxBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return nil, fmt.Errorf("file: %w", err)
	}
	if f, _, err := r.FormFile("file"); err == nil {
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxBody))
		if err != nil {
			return nil, fmt.Errorf("file: %w", err)
		}
		if len(b) > 0 {
			return b, nil
		}
	}
	if t := r.PostFormValue("text"); strings.TrimSpace(t) != "" {
		return []byte(t), nil
	}
	return nil, errors.New("file: choose an import file (YAML, as for keygate keys import) or paste its text")
}
