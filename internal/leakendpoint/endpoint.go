package leakendpoint

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/keygate/keygate/internal/leakscan"
	"github.com/keygate/keygate/policy"
)

// The request headers GitHub signs its reports with.
const (
	HeaderKeyID     = "Github-Public-Key-Identifier"
	HeaderSignature = "Github-Public-Key-Signature"
)

// Store is what the endpoint needs of the key store: key lifecycle
// (*keyadmin.Service: Get, and Revoke with Config.Revoke) and the store's
// peppers, read for each report so that a pepper rotated since start
// still verifies hmac-sha256 keys.
type Store struct {
	Keys    leakscan.Keys
	Peppers func(ctx context.Context) (policy.Peppers, error)
}

// Endpoint is the partner endpoint, an http.Handler.
type Endpoint struct {
	cfg    Config
	store  Store
	keys   *PublicKeys
	replay *replayGuard
	scan   *leakscan.Scanner
}

// New returns the endpoint.
func New(cfg Config, store Store, keys *PublicKeys) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store.Keys == nil || store.Peppers == nil || keys == nil {
		return nil, errors.New("leakendpoint: a store and public keys are required")
	}
	cfg = cfg.withDefaults()
	return &Endpoint{cfg: cfg, store: store, keys: keys, replay: newReplayGuard(cfg.ReplayWindow, cfg.ReplayEntries),
		scan: leakscan.New(leakscan.Config{})}, nil
}

// refusal is a 4xx or 5xx answer with a reason for the sender.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(status int, format string, args ...any) *refusal {
	return &refusal{status: status, reason: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one report.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := e.cfg.Log.With("remote", r.RemoteAddr, "key_identifier", truncate(r.Header.Get(HeaderKeyID), 100))
	body, rf := e.authenticate(w, r)
	if rf != nil {
		e.answerRefusal(w, log, rf)
		return
	}
	report, err := ParseReport(body, e.cfg.MaxTokens)
	switch {
	case errors.Is(err, ErrTooManyTokens):
		e.answerRefusal(w, log, refuse(http.StatusRequestEntityTooLarge, "%v", err))
		return
	case err != nil:
		e.answerRefusal(w, log, refuse(http.StatusBadRequest, "%v", err))
		return
	}
	sum := sha256.Sum256(body)
	if !e.replay.admit(sum, e.cfg.Now()) {
		e.answerRefusal(w, log, refuse(http.StatusConflict, "replayed request: this report was already received"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.Timeout)
	defer cancel()
	feedback, err := e.handle(ctx, log, report)
	if err != nil {
		e.replay.forget(sum) // GitHub's retry must be answered
		log.Error("leak report not fully handled; answered 503", "tokens", len(report), "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the key store could not answer; retry later"})
		return
	}
	log.Info("leak report handled", "tokens", len(report))
	writeJSON(w, http.StatusOK, feedback)
}

// authenticate reads the body (bounded) and verifies its signature.
func (e *Endpoint) authenticate(w http.ResponseWriter, r *http.Request) ([]byte, *refusal) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, refuse(http.StatusMethodNotAllowed, "method %s: want POST", r.Method)
	}
	ids, sigs := r.Header.Values(HeaderKeyID), r.Header.Values(HeaderSignature)
	if len(ids) != 1 || len(sigs) != 1 || ids[0] == "" || sigs[0] == "" {
		return nil, refuse(http.StatusUnauthorized, "want exactly one %s and one %s header", HeaderKeyID, HeaderSignature)
	}
	body, err := readBody(w, r, e.cfg.MaxBody)
	if err != nil {
		return nil, err
	}
	pub, lerr := e.keys.Lookup(r.Context(), ids[0])
	if lerr != nil {
		return nil, refuse(http.StatusUnauthorized, "%s: %v", HeaderKeyID, lerr)
	}
	if !verifySignature(pub, sigs[0], body) {
		return nil, refuse(http.StatusUnauthorized, "%s does not verify the body with the key %s names", HeaderSignature, HeaderKeyID)
	}
	return body, nil
}

// verifySignature checks a base64 ASN.1 DER ECDSA signature of the body's
// SHA-256.
func verifySignature(pub *ecdsa.PublicKey, sigB64 string, body []byte) bool {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		return false
	}
	digest := sha256.Sum256(body)
	return ecdsa.VerifyASN1(pub, digest[:], sig)
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *refusal) {
	if r.ContentLength > limit {
		return nil, refuse(http.StatusRequestEntityTooLarge, "body of %d bytes: the limit is %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, refuse(http.StatusRequestEntityTooLarge, "body over the limit of %d bytes", limit)
	case err != nil:
		return nil, refuse(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

func (e *Endpoint) answerRefusal(w http.ResponseWriter, log *slog.Logger, rf *refusal) {
	log.Warn("leak report refused", "status", rf.status, "reason", rf.reason)
	writeJSON(w, rf.status, map[string]string{"error": rf.reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
