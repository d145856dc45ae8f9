package vault

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/policy"
)

// tlsPeers are two real Vault servers of the test's own with TLS
// listeners, one requiring a client certificate, plus TLS files neither
// of them trusts.
type tlsPeers struct {
	tls, mtls         *vaulttest.TLSVault
	otherCA           string // a self-signed certificate that signed neither Vault's nor the client's
	selfCert, selfKey string // a client certificate Vault's client CA did not sign
	base              string
}

func newTLSPeers(t *testing.T) *tlsPeers {
	t.Helper()
	// vault/api reads these for the settings Config leaves empty; "no CA"
	// must mean the system roots here.
	for _, k := range []string{"VAULT_CACERT", "VAULT_CACERT_BYTES", "VAULT_CAPATH", "VAULT_CLIENT_CERT",
		"VAULT_CLIENT_KEY", "VAULT_SKIP_VERIFY", "VAULT_TLS_SERVER_NAME"} {
		t.Setenv(k, "")
	}
	p := &tlsPeers{
		tls:  vaulttest.TLSServer(t, vaulttest.TLSOptions{}),
		mtls: vaulttest.TLSServer(t, vaulttest.TLSOptions{RequireClientCert: true}),
		base: "test/" + randomHex(6),
	}
	p.selfCert, p.selfKey, _ = selfSigned(t, t.TempDir())
	p.otherCA = p.selfCert
	return p
}

// What a case's Config gets for CACert and ClientCert/ClientKey.
const (
	tlsNone  = ""      // CACert: the system roots; no client certificate
	tlsGood  = "good"  // the CA that signed Vault's certificate; a client certificate Vault trusts
	tlsOther = "other" // otherCA; the self-signed client certificate
)

type tlsCase struct {
	name   string
	mtls   bool   // the server requires a client certificate
	ca     string // tlsNone, tlsGood or tlsOther
	client string // tlsNone, tlsGood or tlsOther
	want   string // deny cases: a substring of the error, if it is fixed
}

func (p *tlsPeers) server(c tlsCase) *vaulttest.TLSVault {
	if c.mtls {
		return p.mtls
	}
	return p.tls
}

// store is a Store on c's server with c's TLS files.
func (p *tlsPeers) store(t *testing.T, c tlsCase) *Store {
	t.Helper()
	v := p.server(c)
	cfg := testConfig(v.Addr, v.Token, p.base)
	switch c.ca {
	case tlsGood:
		cfg.CACert = v.CAFile
	case tlsOther:
		cfg.CACert = p.otherCA
	}
	switch c.client {
	case tlsGood:
		cfg.ClientCert, cfg.ClientKey = p.mtls.ClientCertFile, p.mtls.ClientKeyFile
	case tlsOther:
		cfg.ClientCert, cfg.ClientKey = p.selfCert, p.selfKey
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// The Store reaches a real Vault over TLS: it writes a record and looks it
// up again.
func TestTLSVaultAllow(t *testing.T) {
	p := newTLSPeers(t)
	for _, c := range []tlsCase{
		{name: "CA file", ca: tlsGood},
		{name: "mutual TLS", mtls: true, ca: tlsGood, client: tlsGood},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := p.store(t, c)
			ctx := context.Background()
			id, rec := newRecord(t)
			if err := s.Create(ctx, id, rec); err != nil {
				t.Fatalf("Create: %v", err)
			}
			got, err := s.Lookup(ctx, id)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if diff := cmp.Diff(rec, got, ignoreCompiled); diff != "" {
				t.Errorf("Lookup (-created +got):\n%s", diff)
			}
		})
	}
}

// A TLS handshake that fails is a transient *Error (unreachable), never
// "key not found": the key looked up exists on that server.
func TestTLSVaultDeny(t *testing.T) {
	p := newTLSPeers(t)
	ids := map[bool]string{false: p.seed(t, p.tls), true: p.seed(t, p.mtls)}
	const unknownCA = "x509: certificate signed by unknown authority"
	for _, c := range []tlsCase{
		{name: "system roots", want: unknownCA},
		{name: "wrong CA", ca: tlsOther, want: unknownCA},
		{name: "mutual TLS, system roots", mtls: true, client: tlsGood, want: unknownCA},
		// Under TLS 1.3 the client hears of Vault's refusal only after its
		// own handshake, as an alert, a reset or a broken pipe, whichever
		// comes first: no fixed message. seed is the control: the same
		// server and CA with the client certificate work.
		{name: "mutual TLS, no client certificate", mtls: true, ca: tlsGood},
		{name: "mutual TLS, untrusted client certificate", mtls: true, ca: tlsGood, client: tlsOther},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.store(t, c).Lookup(context.Background(), ids[c.mtls])
			var e *Error
			switch {
			case errors.Is(err, policy.ErrKeyNotFound), errors.Is(err, policy.ErrInvalidRecord):
				t.Fatalf("Lookup = %v, want a transient error, not a verdict on the key", err)
			case !errors.As(err, &e) || e.Class() != ClassUnreachable || e.Status != 0:
				t.Fatalf("Lookup = %v, want an *Error of class %s", err, ClassUnreachable)
			case !strings.Contains(err.Error(), c.want):
				t.Errorf("Lookup = %v, want it to say %q", err, c.want)
			}
		})
	}
}

// seed writes a record on v with every TLS file v needs and returns its id.
func (p *tlsPeers) seed(t *testing.T, v *vaulttest.TLSVault) string {
	t.Helper()
	c := tlsCase{mtls: v == p.mtls, ca: tlsGood}
	if c.mtls {
		c.client = tlsGood
	}
	id, rec := newRecord(t)
	if err := p.store(t, c).Create(context.Background(), id, rec); err != nil {
		t.Fatalf("seeding %s: %v", v.Addr, err)
	}
	return id
}
