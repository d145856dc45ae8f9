package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/goleak"
)

// serviceAccountJWT signs a legacy Kubernetes service-account token for
// default/keygate with a fresh ES256 key. Vault's kubernetes auth reads its
// claims and asks the TokenReview API whether it is valid.
func serviceAccountJWT(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + enc(map[string]any{
		"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:default:keygate",
		"kubernetes.io/serviceaccount/namespace":            "default",
		"kubernetes.io/serviceaccount/service-account.name": "keygate",
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-keygate",
		"kubernetes.io/serviceaccount/secret.name":          "keygate-token",
	})
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tokenReview is a Kubernetes TokenReview API on loopback that approves
// exactly jwt, for Vault's kubernetes auth mount to call.
func tokenReview(t *testing.T, jwt string, calls *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &req)
		calls.Add(1)
		status := map[string]any{"authenticated": false}
		if req.Spec.Token == jwt {
			status = map[string]any{"authenticated": true, "user": map[string]any{
				"username": "system:serviceaccount:default:keygate", "uid": "uid-keygate",
				"groups": []string{"system:serviceaccounts"}}}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "status": status})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func kubernetesMount(t *testing.T, root *vaultapi.Client, host, policy string) string {
	t.Helper()
	mount := "k8s-" + randomHex(4)
	if err := root.Sys().EnableAuthWithOptions(mount, &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Sys().DisableAuth(mount) })
	writes := map[string]map[string]any{
		"auth/" + mount + "/config": {"kubernetes_host": host, "disable_local_ca_jwt": true},
		"auth/" + mount + "/role/keygate": {"bound_service_account_names": "keygate",
			"bound_service_account_namespaces": "default", "token_policies": policy, "token_ttl": "1h"},
	}
	for path, data := range writes {
		if _, err := root.Logical().Write(path, data); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return mount
}

func TestKubernetesLogin(t *testing.T) {
	f := newFixture(t)
	opts := leakOpts() // checked after the TokenReview server's cleanup
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
	root := f.vault.Client(t)
	jwt := serviceAccountJWT(t)
	var reviews atomic.Int64
	mount := kubernetesMount(t, root, tokenReview(t, jwt, &reviews).URL, readerPolicy(t, root, f.base))
	jwtFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtFile, []byte(jwt), 0o600); err != nil {
		t.Fatal(err)
	}
	af := startAuth(t, f, newKey(t, f), func(a *AuthConfig) {
		a.Method, a.KubernetesMount, a.Role, a.JWTFile = AuthKubernetes, mount, "keygate", jwtFile
	})
	defer af.stop(t, jwt)
	if _, err := af.store.Lookup(context.Background(), af.id); err != nil {
		t.Fatal(err)
	}
	if reviews.Load() < 1 || af.store.Auth().Logins() != 1 {
		t.Errorf("token reviews = %d, logins = %d", reviews.Load(), af.store.Auth().Logins())
	}
}

// A JWT the TokenReview API rejects: no login, Ready stays open, and the
// failure is logged without the JWT.
func TestKubernetesLoginRejected(t *testing.T) {
	f := newFixture(t)
	root := f.vault.Client(t)
	var reviews atomic.Int64
	mount := kubernetesMount(t, root, tokenReview(t, "another", &reviews).URL, "default")
	jwt := serviceAccountJWT(t)
	jwtFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(jwtFile, []byte(jwt), 0o600)
	cfg := testConfig(f.vault.Addr, "", f.base)
	cfg.Auth.Method, cfg.Auth.KubernetesMount, cfg.Auth.Role, cfg.Auth.JWTFile = AuthKubernetes, mount, "keygate", jwtFile
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := newRecord(t)
	_, err = s.Lookup(context.Background(), id)
	if err == nil || strings.Contains(err.Error(), jwt) || !strings.Contains(err.Error(), "login") {
		t.Errorf("lookup = %v, want a login error without the JWT", err)
	}
	if reviews.Load() < 1 {
		t.Error("Vault did not call the TokenReview API")
	}
}
