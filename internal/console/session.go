package console

import (
	"context"
	"crypto/subtle"
	"net/http"
	"sync"
	"time"
)

// A session is one signed-in person. Its id (the cookie) and CSRF token are
// random; the Vault token stays here, server-side, never in a page.
type session struct {
	id, csrf string
	grant    *Grant
	expires  time.Time // the token's expiry or SessionMax, whichever first

	mu       sync.Mutex
	lastSeen time.Time
	// shown is a newly issued raw key, rendered once by the next page and
	// then forgotten, so a reload never shows it again.
	shown *shownKey
	// flash is a one-time message for the next page (after a redirect).
	flash string
	// listChecked is when the person's credentials last listed the keys
	// (see Console.canList).
	listChecked time.Time
	// pending is an import checked by a dry run, awaiting "apply".
	pending *pendingImport
}

type shownKey struct{ ID, Key, What string }

// takeShown returns the key to show once on key id's page, and forgets
// it; another key's page leaves it for its own.
func (s *session) takeShown(id string) *shownKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.shown
	if k == nil || k.ID != id {
		return nil
	}
	s.shown = nil
	return k
}

func (s *session) setShown(k *shownKey) {
	s.mu.Lock()
	s.shown = k
	s.mu.Unlock()
}

// sessions are kept in memory: a restart signs everyone out.
type sessions struct {
	cfg *Config
	mu  sync.Mutex
	m   map[string]*session
}

func (c *Console) cookieName() string {
	if c.cfg.Secure {
		return "__Host-keygate_session"
	}
	return "keygate_session"
}

// start makes a new session for grant (a new id at every sign-in: a
// session id planted before sign-in is never promoted).
func (ss *sessions) start(g *Grant) (*session, error) {
	id, err := randomToken()
	if err != nil {
		return nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := ss.cfg.Now()
	exp := now.Add(ss.cfg.SessionMax)
	if !g.Expires.IsZero() && g.Expires.Before(exp) {
		exp = g.Expires
	}
	s := &session{id: id, csrf: csrf, grant: g, expires: exp, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*session{}
	}
	ss.m[id] = s
	return s, nil
}

// get returns the live session with id, touching it.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	ss.mu.Lock()
	s := ss.m[id]
	ss.mu.Unlock()
	if s == nil {
		return nil
	}
	now := ss.cfg.Now()
	s.mu.Lock()
	live := now.Before(s.expires) && now.Sub(s.lastSeen) < ss.cfg.IdleTimeout
	if live {
		s.lastSeen = now
	}
	s.mu.Unlock()
	if !live {
		ss.end(context.Background(), s)
		return nil
	}
	return s
}

// end forgets s and revokes its credentials (best effort: an expired
// token needs no revoking).
func (ss *sessions) end(ctx context.Context, s *session) error {
	ss.mu.Lock()
	_, had := ss.m[s.id]
	delete(ss.m, s.id)
	ss.mu.Unlock()
	if !had || s.grant.signOut == nil {
		return nil
	}
	return s.grant.signOut(ctx)
}

// expired returns the sessions past their expiry or idle timeout, removed.
func (ss *sessions) expired() []*session {
	now := ss.cfg.Now()
	var out []*session
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.m {
		s.mu.Lock()
		dead := !now.Before(s.expires) || now.Sub(s.lastSeen) >= ss.cfg.IdleTimeout
		s.mu.Unlock()
		if dead {
			delete(ss.m, id)
			out = append(out, s)
		}
	}
	return out
}

// all returns every live session (for a shutdown's sign-outs).
func (ss *sessions) all() []*session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*session, 0, len(ss.m))
	for _, s := range ss.m {
		out = append(out, s)
	}
	return out
}

// session returns the request's session, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(c.cookieName())
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value)
}

func (c *Console) setSessionCookie(w http.ResponseWriter, s *session) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(), Value: s.id, Path: "/", HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteStrictMode, Expires: s.expires,
	})
}

func (c *Console) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
}

// validCSRF reports whether the form carries the session's CSRF token.
func validCSRF(s *session, r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
