package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// ErrNotLoggedIn: a request was made before the auth manager's first
// successful login.
var ErrNotLoggedIn = errors.New("not logged in to Vault yet")

// Auth keeps the Store's Vault token fresh: it logs in (AppRole,
// Kubernetes) or reads a token file, renews login tokens with vault/api's
// LifetimeWatcher, and logs in again at max TTL or when Vault answers 403
// to the current token, with capped exponential backoff and jitter.
//
// Run is its one long-lived goroutine, owned by the caller. Without Run
// (one-shot CLI commands), the Store logs in on its first request.
type Auth struct {
	cfg    AuthConfig
	static bool             // a fixed Config.Token: nothing to do
	client *vaultapi.Client // the Store's client: its token is set here
	login  *vaultapi.Client // same server and headers, no token: logins, renewals
	reqTO  time.Duration    // timeout of one login request

	ready     chan struct{}
	readyOnce sync.Once
	forbidden chan string // a token Vault refused; buffered 1, coalesced
	running   atomic.Bool
	oneShot   sync.Mutex // serialises the Store's inline logins

	logins, renewals, failures atomic.Int64
	staticRefused              atomic.Bool // Vault refuses the static token
}

func newAuth(cfg Config, client *vaultapi.Client) (*Auth, error) {
	login, err := client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault: login client: %w", err)
	}
	a := &Auth{
		cfg:       cfg.Auth,
		static:    !cfg.Auth.usesLogin() && cfg.Auth.TokenFile == "",
		client:    client,
		login:     login,
		reqTO:     max(cfg.Timeout, 5*time.Second),
		ready:     make(chan struct{}),
		forbidden: make(chan string, 1),
	}
	a.login.SetToken("")
	if a.static {
		a.markReady()
	}
	return a, nil
}

// Ready is closed after the first successful login (at once for a static
// token). Serve should report NOT_SERVING until then.
func (a *Auth) Ready() <-chan struct{} { return a.ready }

// Logins counts successful logins (token-file reads for the token method).
func (a *Auth) Logins() int64 { return a.logins.Load() }

// Renewals counts successful token renewals.
func (a *Auth) Renewals() int64 { return a.renewals.Load() }

// LoginFailures counts failed login attempts.
func (a *Auth) LoginFailures() int64 { return a.failures.Load() }

func (a *Auth) markReady() { a.readyOnce.Do(func() { close(a.ready) }) }

// Run logs in, keeps the token fresh and logs in again as needed until ctx
// ends; it then returns nil. With a static token there is nothing to
// renew: it only checks 403s and says, once, if Vault refuses the token
// (keygate cannot log in again by itself). log gets one line per login,
// re-login and failure, never a secret.
func (a *Auth) Run(ctx context.Context, log *slog.Logger) error {
	if a.static {
		a.watchStatic(ctx, log)
		return nil
	}
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("vault: auth: Run is already running")
	}
	defer a.running.Store(false)
	bo := backoff{min: a.cfg.MinBackoff, max: a.cfg.MaxBackoff}
	streak := backoff{min: a.cfg.MinBackoff, max: a.cfg.MaxBackoff}
	for ctx.Err() == nil {
		secret, err := a.loginOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			d := bo.next()
			log.Warn("vault login failed", "method", a.cfg.Method, "err", err, "retry_in", d.String())
			sleep(ctx, d)
			continue
		}
		bo.reset()
		a.markReady()
		log.Info("vault login", "method", a.cfg.Method, "ttl", secretTTL(secret).String())
		reason := a.hold(ctx, log, secret, &streak)
		sleep(ctx, streak.afterHold(reason)) // 0: at once
		if ctx.Err() == nil && reason != "" {
			log.Info("vault re-login", "method", a.cfg.Method, "reason", reason)
		}
	}
	return nil
}

// hold keeps the current token until it must be replaced, and says why:
// "max_ttl", "renew_failed", "forbidden", or "" when ctx ended.
func (a *Auth) hold(ctx context.Context, log *slog.Logger, secret *vaultapi.Secret, streak *backoff) string {
	if !a.cfg.usesLogin() {
		return a.watchFile(ctx, log)
	}
	if secret.Auth.LeaseDuration <= 0 {
		return a.waitForbidden(ctx, nil) // a token that never expires
	}
	w, err := a.login.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{
		Secret:        secret,
		Increment:     secret.Auth.LeaseDuration,
		RenewBehavior: vaultapi.RenewBehaviorIgnoreErrors,
	})
	if err != nil {
		log.Warn("vault token renewal unavailable", "err", err)
		return a.waitForbidden(ctx, nil)
	}
	done := make(chan struct{})
	go func() { w.Start(); close(done) }()
	defer func() { w.Stop(); <-done }()
	return a.waitForbidden(ctx, &watch{w: w, streak: streak})
}

type watch struct {
	w      *vaultapi.LifetimeWatcher
	streak *backoff
}

// waitForbidden waits for ctx, the watcher (if any) to end, or a 403 to
// the current token that lookup-self confirms.
func (a *Auth) waitForbidden(ctx context.Context, w *watch) string {
	var doneCh <-chan error
	var renewCh <-chan *vaultapi.RenewOutput
	if w != nil {
		doneCh, renewCh = w.w.DoneCh(), w.w.RenewCh()
	}
	var lastCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return ""
		case err := <-doneCh:
			if err != nil {
				return "renew_failed"
			}
			w.streak.reset()
			return "max_ttl"
		case <-renewCh:
			a.renewals.Add(1)
			w.streak.reset()
		case token := <-a.forbidden:
			if time.Since(lastCheck) < a.cfg.MinBackoff {
				continue // checked just now: the token was fine
			}
			lastCheck = time.Now()
			if a.tokenRefused(ctx, token) {
				return "forbidden"
			}
		}
	}
}

// tokenRefused reports whether token is still the current one and Vault
// refuses it (lookup-self is 403): a 403 for a path the policy does not
// allow must not cause a re-login.
func (a *Auth) tokenRefused(ctx context.Context, token string) bool {
	if token != a.client.Token() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, a.reqTO)
	defer cancel()
	c, err := a.login.CloneWithHeaders()
	if err != nil {
		return false
	}
	c.SetToken(token)
	_, err = c.Auth().Token().LookupSelfWithContext(ctx)
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == 403
}

// watchStatic confirms each 403 to the static token with lookup-self and
// logs one ERROR when Vault refuses the token itself (revoked or expired),
// not just a path.
func (a *Auth) watchStatic(ctx context.Context, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case token := <-a.forbidden:
			if a.staticRefused.Load() || !a.tokenRefused(ctx, token) {
				continue
			}
			a.staticRefused.Store(true)
			log.Error("Vault refuses keygate's token (revoked or expired): uncached keys are denied 503 and cached ones " +
				"are served only within --stale-ttl; keygate cannot log in again by itself: restart it with a new " +
				"VAULT_TOKEN, or use --vault-token-file or a login method (--vault-auth approle|kubernetes)")
		}
	}
}

// StaticTokenRefused reports whether Vault has refused the static token.
func (a *Auth) StaticTokenRefused() bool { return a.staticRefused.Load() }

// noteForbidden tells Run that Vault answered 403 to token. It never
// blocks: signals coalesce.
func (a *Auth) noteForbidden(token string) {
	if token == "" {
		return
	}
	select {
	case a.forbidden <- token:
	default:
	}
}

// ensure is called before each Store request. With Run active it only
// says whether a token is there yet; without Run (one-shot commands) the
// first request logs in inline.
func (a *Auth) ensure(ctx context.Context, op Operation, keyID string) error {
	if a.static || a.client.Token() != "" {
		return nil
	}
	if a.running.Load() {
		return &Error{Op: op, KeyID: keyID, Err: ErrNotLoggedIn}
	}
	a.oneShot.Lock()
	defer a.oneShot.Unlock()
	if a.client.Token() != "" {
		return nil
	}
	if _, err := a.loginOnce(ctx); err != nil {
		return &Error{Op: op, KeyID: keyID, Err: err}
	}
	a.markReady()
	return nil
}

// backoff is capped exponential backoff with "equal jitter": the n-th
// wait is uniformly in [d/2, d] with d = min·2ⁿ capped at max.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 30)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.n = 0 }

// afterHold is how long to wait before logging in again when a token was
// given up for reason, b counting the tokens refused in a row (403s; a
// renewal resets it): the first refused token re-logs in at once, later
// ones back off, so tokens refused again and again do not turn into a
// login per request. Other reasons re-log in at once.
func (b *backoff) afterHold(reason string) time.Duration {
	if reason != "forbidden" {
		return 0
	}
	if b.n == 0 {
		b.n++
		return 0
	}
	return b.next()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func secretTTL(s *vaultapi.Secret) time.Duration {
	if s == nil || s.Auth == nil {
		return 0
	}
	return time.Duration(s.Auth.LeaseDuration) * time.Second
}
