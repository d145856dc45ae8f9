package metrics

import (
	"context"
	"io"
	"log/slog"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/audit"
	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// oneKey is a store holding one record.
type oneKey struct {
	id  string
	rec *policy.Record
}

func (s oneKey) Lookup(_ context.Context, id string) (*policy.Record, error) {
	if id == s.id {
		return s.rec, nil
	}
	return nil, policy.ErrKeyNotFound
}

// benchServer is a Server with one cached key and a sidecar-shaped request.
func benchServer(b *testing.B) (*extauthz.Server, *authv3.CheckRequest) {
	f, _ := policy.NewFormat("kg")
	rawKey, id, err := f.Generate()
	if err != nil {
		b.Fatal(err)
	}
	h, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	rec := &policy.Record{Hash: h.Hash(rawKey).String(), Tenant: "acme", Status: policy.StatusActive, Scopes: []string{"orders:read"}}
	if err := rec.Validate(); err != nil {
		b.Fatal(err)
	}
	srv, err := extauthz.NewServer(extauthz.DefaultConfig(), oneKey{id, rec}, h, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api.example.com", Path: "/v1/orders?limit=20",
			Headers: map[string]string{"x-api-key": rawKey, "x-request-id": "4b9f3c1e-8a2d-4e5f-9c7b-1a2b3c4d5e6f",
				"user-agent": "acme-client/2.3.1", "accept": "application/json", ":authority": "api.example.com"}},
	}}}
	return srv, req
}

// BenchmarkCheckObserved is a cache-hit Check with nothing, metrics, the
// audit log, or both attached: the hot-path cost of observing decisions.
func BenchmarkCheckObserved(b *testing.B) {
	for _, mode := range []string{"none", "metrics", "audit", "both"} {
		b.Run(mode, func(b *testing.B) {
			srv, req := benchServer(b)
			m := New(DefaultConfig())
			al, err := audit.New(benchAudit())
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- al.Run(ctx) }()
			switch mode {
			case "metrics":
				srv.OnDecision = m.Decision
			case "audit":
				srv.OnDecision = al.Log
			case "both":
				srv.OnDecision = func(d extauthz.Decision) { m.Decision(d); al.Log(d) }
			}
			bg := context.Background()
			if resp, _ := srv.Check(bg, req); resp.GetStatus().GetCode() != 0 {
				b.Fatal("not allowed")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_, _ = srv.Check(bg, req)
			}
			b.StopTimer()
			cancel()
			<-done
			if mode == "audit" || mode == "both" {
				b.ReportMetric(float64(al.Dropped())/float64(b.N), "dropped/op")
			}
		})
	}
}

func benchAudit() audit.Config {
	c := audit.DefaultConfig()
	c.Out, c.Buffer = io.Discard, 1<<16
	return c
}
