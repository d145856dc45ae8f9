package leakendpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/keygate/keygate/internal/leakscan"
)

// keyLen bounds the length of a keygate key: a 1–10 character prefix, "_"
// and the 50-character body. Longer or shorter tokens are not scanned.
const (
	minKeyLen = 1 + 1 + 50
	maxKeyLen = 10 + 1 + 50
)

// handle looks every token up (and revokes the active ones with
// Config.Revoke) and returns GitHub's feedback, in the report's order. An
// error means the store could not answer for some token, or a revocation
// failed: the caller answers 503 so that GitHub retries.
func (e *Endpoint) handle(ctx context.Context, log *slog.Logger, report []Match) ([]Feedback, error) {
	findings, at := e.findKeys(report)
	if len(findings) > 0 {
		peppers, err := e.store.Peppers(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the store's peppers: %w", err)
		}
		v, err := leakscan.NewVerifier(e.store.Keys, peppers, e.cfg.Now)
		if err != nil {
			return nil, err
		}
		v.Verify(ctx, findings)
		if e.cfg.Revoke {
			v.Revoke(ctx, findings)
		}
	}
	out := make([]Feedback, len(report))
	var errs []error
	for i, m := range report {
		sum := sha256.Sum256([]byte(m.Token))
		out[i] = Feedback{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: FalsePositive}
		attrs := []any{"type", truncate(m.Type, 100), "url", truncate(m.URL, 500), "source", truncate(m.Source, 100)}
		if at[i] < 0 {
			log.Info("leaked token: not a keygate key", attrs...)
			continue
		}
		f := findings[at[i]]
		attrs = append(attrs, "key_id", f.KeyID, "status", string(f.Status))
		switch f.Status {
		case leakscan.Active, leakscan.Revoked, leakscan.Expired:
			out[i].Label = TruePositive
		case leakscan.Error:
			errs = append(errs, fmt.Errorf("key %s: %w", f.KeyID, f.StatusErr))
			log.Error("leaked token: status unknown", append(attrs, "error", f.StatusErr)...)
			continue
		}
		switch {
		case f.RevokeErr != nil:
			errs = append(errs, fmt.Errorf("revoke key %s: %w", f.KeyID, f.RevokeErr))
			log.Error("leaked key NOT revoked", append(attrs, "error", f.RevokeErr)...)
		case f.Revoked:
			log.Warn("leaked key revoked", append(attrs, "revoked_reason", leakscan.RevokeReason, "warnings", errors.Join(f.Warnings...))...)
		case f.Status == leakscan.Active:
			log.Warn("leaked key is active (not revoked: no --revoke)", attrs...)
		default:
			log.Info("leaked token", append(attrs, "label", string(out[i].Label))...)
		}
	}
	return out, errors.Join(errs...)
}

// findKeys turns each token that is exactly one keygate key (any prefix,
// valid checksum) into a finding; at[i] is token i's finding, or -1.
func (e *Endpoint) findKeys(report []Match) (findings []leakscan.Finding, at []int) {
	at = make([]int, len(report))
	for i, m := range report {
		at[i] = -1
		if len(m.Token) < minKeyLen || len(m.Token) > maxKeyLen {
			continue
		}
		fs, _, err := e.scan.Reader(strings.NewReader(m.Token), "github")
		if err != nil || len(fs) != 1 || fs[0].Line != 1 || fs[0].Column != 1 || len(fs[0].Prefix)+minKeyLen-1 != len(m.Token) {
			continue // not exactly a key: "x" + key, key + "\n", ...
		}
		at[i] = len(findings)
		findings = append(findings, fs[0])
	}
	return findings, at
}
