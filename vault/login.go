package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// loginOnce makes one login attempt and installs the new token in the
// Store's client. For the token method it reads the token file.
func (a *Auth) loginOnce(ctx context.Context) (*vaultapi.Secret, error) {
	if !a.cfg.usesLogin() {
		token, err := readSecretFile(a.cfg.TokenFile, "token file")
		if err != nil {
			a.failures.Add(1)
			return nil, err
		}
		a.client.SetToken(token)
		a.logins.Add(1)
		return &vaultapi.Secret{}, nil
	}
	data, err := a.loginData()
	if err != nil {
		a.failures.Add(1)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.reqTO)
	defer cancel()
	secret, err := a.login.Logical().WriteWithContext(ctx, "auth/"+a.cfg.loginMount()+"/login", data)
	switch {
	case err != nil:
		a.failures.Add(1)
		return nil, loginError(err)
	case secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "":
		a.failures.Add(1)
		return nil, &Error{Op: OpLogin, Err: errors.New("the login answer from Vault has no token")}
	}
	a.client.SetToken(secret.Auth.ClientToken)
	a.logins.Add(1)
	return secret, nil
}

// loginData is the login request body. Secrets are read from their files
// at each login, so rotated files are picked up.
func (a *Auth) loginData() (map[string]any, error) {
	switch a.cfg.Method {
	case AuthAppRole:
		data := map[string]any{"role_id": a.cfg.RoleID}
		secretID := a.cfg.SecretID
		if a.cfg.SecretIDFile != "" {
			var err error
			if secretID, err = readSecretFile(a.cfg.SecretIDFile, "secret id file"); err != nil {
				return nil, err
			}
		}
		if secretID != "" {
			data["secret_id"] = secretID
		}
		return data, nil
	case AuthKubernetes:
		jwt, err := readSecretFile(a.cfg.JWTFile, "JWT file")
		if err != nil {
			return nil, err
		}
		return map[string]any{"role": a.cfg.Role, "jwt": jwt}, nil
	}
	return nil, fmt.Errorf("vault: auth method %q does not log in", a.cfg.Method)
}

// maxSecretFile bounds a token, secret id or JWT file.
const maxSecretFile = 64 << 10

// readSecretFile reads a one-line secret, trimming surrounding whitespace.
// Errors say which file it is (what) and its path, never the content.
func readSecretFile(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("vault: %s: %w", what, err)
	}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("vault: %s %s: empty", what, path)
	case len(b) > maxSecretFile:
		return "", fmt.Errorf("vault: %s %s: over %d bytes", what, path, maxSecretFile)
	case bytes.ContainsFunc(b, isSpaceOrControl):
		return "", fmt.Errorf("vault: %s %s: contains whitespace or control characters", what, path)
	}
	return string(b), nil
}

// loginError keeps Vault's status and messages, not the request URL or
// body.
func loginError(err error) error {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		return &Error{Op: OpLogin, Err: err}
	}
	return &Error{Op: OpLogin, Status: re.StatusCode, Err: errors.New(summarize(re.Errors, ""))}
}

// watchFile (token method) polls the token file and installs a changed
// token; a 403 to the current token triggers an immediate re-read.
func (a *Auth) watchFile(ctx context.Context, log *slog.Logger) string {
	tick := time.NewTicker(a.cfg.TokenFilePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-tick.C:
		case token := <-a.forbidden:
			if token != a.client.Token() {
				continue
			}
		}
		token, err := readSecretFile(a.cfg.TokenFile, "token file")
		if err != nil {
			log.Warn("cannot re-read the Vault token file; keeping the current token", "err", err)
			continue
		}
		if token != a.client.Token() {
			a.client.SetToken(token)
			a.logins.Add(1)
			log.Info("vault token file changed: using the new token")
		}
	}
}
