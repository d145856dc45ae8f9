package leakendpoint

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// GitHubPublicKeysURL is where GitHub publishes the secret scanning
// signing keys.
const GitHubPublicKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// Errors of PublicKeys.Lookup.
var (
	ErrUnknownKey  = errors.New("unknown public key identifier")
	ErrUnusableKey = errors.New("public key is not an ECDSA P-256 key")
)

// KeysConfig configures PublicKeys. Start from DefaultKeysConfig.
type KeysConfig struct {
	// Source is a file path, or an http(s) URL such as
	// GitHubPublicKeysURL, of a document in GitHub's format:
	// {"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}.
	// Required.
	Source string
	// Refresh is how often the document is re-read. Default 1h.
	Refresh time.Duration
	// MinRefresh is the least time between two reads caused by requests
	// naming an unknown key identifier (GitHub rotated its key), so that
	// forged identifiers cannot make the endpoint hammer the source.
	// Default 1m.
	MinRefresh time.Duration
	// Client fetches a URL source. Default: a client with a 10 s timeout.
	Client *http.Client
	// Log gets refresh failures. Default: discard.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// maxKeysDoc bounds the key document read.
const maxKeysDoc = 1 << 20

// DefaultKeysConfig returns the defaults for source.
func DefaultKeysConfig(source string) KeysConfig {
	return KeysConfig{Source: source, Refresh: time.Hour, MinRefresh: time.Minute}
}

// Validate reports every problem at once.
func (c KeysConfig) Validate() error {
	var errs []error
	if c.Source == "" {
		errs = append(errs, errors.New("public-keys: required (a file, or "+GitHubPublicKeysURL+")"))
	}
	if c.Refresh <= 0 {
		errs = append(errs, fmt.Errorf("public-keys-refresh: %s: must be > 0", c.Refresh))
	}
	if c.MinRefresh < 0 {
		errs = append(errs, fmt.Errorf("public-keys-min-refresh: %s: must be >= 0", c.MinRefresh))
	}
	return errors.Join(errs...)
}

// PublicKeys is GitHub's set of signing keys, by key identifier. It is
// safe for concurrent use.
type PublicKeys struct {
	cfg KeysConfig

	load     sync.Mutex // one read at a time
	lastRead time.Time  // under load

	mu   sync.RWMutex
	keys map[string]publicKey
	etag string
}

// publicKey is a usable key, or why the document's key is not.
type publicKey struct {
	key *ecdsa.PublicKey
	bad error
}

// LoadPublicKeys reads the key document once; it must hold at least one
// usable key.
func LoadPublicKeys(ctx context.Context, cfg KeysConfig) (*PublicKeys, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &PublicKeys{cfg: cfg}
	p.load.Lock()
	defer p.load.Unlock()
	if err := p.read(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Lookup returns the key named id. An unknown id makes it re-read the
// document first (at most once per MinRefresh).
func (p *PublicKeys) Lookup(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	if k, ok := p.get(id); ok {
		return k.key, k.bad
	}
	p.load.Lock()
	defer p.load.Unlock()
	if k, ok := p.get(id); ok { // another request's read found it
		return k.key, k.bad
	}
	if p.cfg.Now().Sub(p.lastRead) < p.cfg.MinRefresh {
		return nil, ErrUnknownKey
	}
	if err := p.read(ctx); err != nil {
		p.cfg.Log.Warn("public keys: re-read for an unknown key identifier failed", "source", p.cfg.Source, "error", err)
		return nil, ErrUnknownKey
	}
	p.cfg.Log.Info("public keys re-read for an unknown key identifier", "source", p.cfg.Source, "found", p.has(id))
	if k, ok := p.get(id); ok {
		return k.key, k.bad
	}
	return nil, ErrUnknownKey
}

// Run re-reads the document every Refresh until ctx ends; a failed read
// keeps the keys already known.
func (p *PublicKeys) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		p.load.Lock()
		err := p.read(ctx)
		p.load.Unlock()
		if err != nil && ctx.Err() == nil {
			p.cfg.Log.Warn("public keys: refresh failed; keeping the keys known", "source", p.cfg.Source, "error", err)
		}
	}
}

// IDs returns the identifiers of the usable keys.
func (p *PublicKeys) IDs() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var ids []string
	for id, k := range p.keys {
		if k.bad == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

func (p *PublicKeys) get(id string) (publicKey, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	k, ok := p.keys[id]
	return k, ok
}

func (p *PublicKeys) has(id string) bool { _, ok := p.get(id); return ok }

// read replaces the keys with the document's; the caller holds p.load.
func (p *PublicKeys) read(ctx context.Context) error {
	p.lastRead = p.cfg.Now()
	data, etag, err := p.fetch(ctx)
	if err != nil || data == nil { // nil: not modified
		return err
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return fmt.Errorf("public keys from %s: %w", p.cfg.Source, err)
	}
	p.mu.Lock()
	p.keys, p.etag = keys, etag
	p.mu.Unlock()
	return nil
}

// fetch reads the source; for a URL, conditionally (If-None-Match), which
// GitHub does not count against its rate limit. nil data: not modified.
func (p *PublicKeys) fetch(ctx context.Context) (data []byte, etag string, err error) {
	src := p.cfg.Source
	if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") {
		f, err := os.Open(src)
		if err != nil {
			return nil, "", fmt.Errorf("public keys: %w", err)
		}
		defer f.Close()
		data, err = checkSize(io.ReadAll(io.LimitReader(f, maxKeysDoc+1)))
		return data, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, "", fmt.Errorf("public keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	p.mu.RLock()
	if p.etag != "" {
		req.Header.Set("If-None-Match", p.etag)
	}
	p.mu.RUnlock()
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("public keys: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, "", nil
	default:
		return nil, "", fmt.Errorf("public keys: GET %s: %s", src, resp.Status)
	}
	data, err = checkSize(io.ReadAll(io.LimitReader(resp.Body, maxKeysDoc+1)))
	return data, resp.Header.Get("ETag"), err
}

func checkSize(data []byte, err error) ([]byte, error) {
	switch {
	case err != nil:
		return nil, fmt.Errorf("public keys: %w", err)
	case len(data) > maxKeysDoc:
		return nil, fmt.Errorf("public keys: document larger than %d bytes", maxKeysDoc)
	}
	return data, nil
}

// keysDoc is GitHub's key document.
type keysDoc struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// ParsePublicKeys reads a key document: each entry is a usable ECDSA
// P-256 key or is kept with the reason it is not (a request naming it is
// refused with that reason). At least one key must be usable.
func ParsePublicKeys(data []byte) (map[string]publicKey, error) {
	var doc keysDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a key document: %w", err)
	}
	keys := make(map[string]publicKey, len(doc.PublicKeys))
	usable := 0
	for _, e := range doc.PublicKeys {
		if e.KeyIdentifier == "" {
			continue
		}
		k := parseKey(e.Key)
		keys[e.KeyIdentifier] = k
		if k.bad == nil {
			usable++
		}
	}
	if usable == 0 {
		return nil, errors.New("no usable ECDSA P-256 public key in the document")
	}
	return keys, nil
}

func parseKey(pemText string) publicKey {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return publicKey{bad: fmt.Errorf("%w: no PEM block", ErrUnusableKey)}
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return publicKey{bad: fmt.Errorf("%w: %w", ErrUnusableKey, err)}
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return publicKey{bad: ErrUnusableKey}
	}
	return publicKey{key: k}
}
