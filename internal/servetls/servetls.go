// Package servetls is the TLS side of keygate's listeners: a server
// certificate, optionally mutual TLS with a client CA and an allowlist of
// caller identities (SPIFFE URI SANs as Istio issues them, or DNS SANs),
// all reloaded from disk when the files change, without a restart. A file
// that does not load (e.g. a half-written rotation) keeps the last good
// material and is retried.
package servetls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/field"
)

// Config configures TLS for a listener. Start from DefaultConfig.
type Config struct {
	CertFile, KeyFile string // PEM server certificate (chain) and key; required
	// ClientCAFile, if set, turns on mutual TLS: callers must present a
	// certificate signed by one of its CAs.
	ClientCAFile string
	// AllowedPeers limits mutual-TLS callers to certificates with one of
	// these SANs: a URI (spiffe://cluster.local/ns/istio-system/sa/gw) or a
	// DNS name, exact, or a prefix ending in "*". Empty: any certificate
	// from the client CA. Needs ClientCAFile.
	AllowedPeers []string
	// Reload is how often the files are checked for changes. Default 10s.
	Reload time.Duration
}

// DefaultConfig is plain text (no files) with a 10s reload.
func DefaultConfig() Config { return Config{Reload: 10 * time.Second} }

// Validate reports every problem at once as *field.Error values named as
// serve's flags (tls-cert, tls-key, tls-client-ca, tls-allowed-peers,
// tls-reload). A Config without files is valid: it means plain text.
func (c Config) Validate() error {
	var l field.List
	if (c.CertFile == "") != (c.KeyFile == "") {
		l.Add("give both", "tls-cert", "tls-key")
	}
	if c.CertFile == "" && (c.ClientCAFile != "" || len(c.AllowedPeers) > 0) {
		l.Add("need --tls-cert and --tls-key", "tls-client-ca", "tls-allowed-peers")
	}
	if len(c.AllowedPeers) > 0 && c.ClientCAFile == "" {
		l.Addf("tls-allowed-peers", "needs --tls-client-ca (only verified client certificates have trusted SANs)")
	}
	for i, p := range c.AllowedPeers {
		if p == "" || p == "*" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			l.Addf(fmt.Sprintf("tls-allowed-peers[%d]", i), "%q: want a URI or DNS name, exact or with one trailing *", p)
		}
	}
	if c.Reload <= 0 {
		l.Addf("tls-reload", "must be > 0, got %s", c.Reload)
	}
	return l.Err()
}

// material is one loaded generation of the files.
type material struct {
	cert *tls.Certificate
	cas  *x509.CertPool // nil without mutual TLS
	sum  [sha256.Size]byte
}

// Reloader serves the current certificate and client CAs.
type Reloader struct {
	cfg  Config
	log  *slog.Logger
	cur  atomic.Pointer[material]
	gens atomic.Uint64 // successful loads, for tests and logs
}

// New loads the files once; errors name the file.
func New(cfg Config, log *slog.Logger) (*Reloader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Reloader{cfg: cfg, log: log}
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.gens.Add(1)
	return r, nil
}

// load reads and checks every file.
func (r *Reloader) load() (*material, error) {
	certPEM, err := os.ReadFile(r.cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err) // the message names no key bytes
	}
	m := &material{cert: &cert}
	h := sha256.New()
	h.Write(certPEM)
	h.Write(keyPEM)
	if r.cfg.ClientCAFile != "" {
		caPEM, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		m.cas = x509.NewCertPool()
		if !m.cas.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate", r.cfg.ClientCAFile)
		}
		h.Write(caPEM)
	}
	copy(m.sum[:], h.Sum(nil))
	return m, nil
}

// Run checks the files every Reload until ctx ends, installing what
// changed and loads; a failed load keeps the current material.
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, err := r.load()
		switch {
		case err != nil:
			r.log.Warn("TLS files do not load; keeping the current certificate", "err", err)
		case !bytes.Equal(m.sum[:], r.cur.Load().sum[:]):
			r.cur.Store(m)
			r.gens.Add(1)
			r.log.Info("TLS certificate reloaded", "not_after", m.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
}

// Loads counts successful loads (the first included).
func (r *Reloader) Loads() uint64 { return r.gens.Load() }

// ServerConfig is a tls.Config for a listener speaking alpn (e.g. "h2"):
// every handshake uses the current material.
func (r *Reloader) ServerConfig(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: alpn,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: alpn, Certificates: []tls.Certificate{*m.cert}}
			if m.cas != nil {
				c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, m.cas
				c.VerifyConnection = r.verifyPeer
			}
			return c, nil
		},
	}
}

// verifyPeer applies AllowedPeers to a verified client certificate.
func (r *Reloader) verifyPeer(cs tls.ConnectionState) error {
	if len(r.cfg.AllowedPeers) == 0 {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("keygate: no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	names := slices.Clone(leaf.DNSNames)
	for _, u := range leaf.URIs {
		names = append(names, u.String())
	}
	for _, n := range names {
		if allowed(r.cfg.AllowedPeers, n) {
			return nil
		}
	}
	return fmt.Errorf("keygate: client certificate SANs %v are not in --tls-allowed-peers", names)
}

func allowed(patterns []string, name string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, prefix) || p == name {
			return true
		}
	}
	return false
}
