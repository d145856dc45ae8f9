package storetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// testServiceMalformed: a record that does not validate is never used:
// Get and List report it, Audit flags it, and nothing acts on it as if
// its status were known.
func testServiceMalformed(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, _ := service(t, f, "")
	ids := putMalformed(t, f)
	id := ids["bad status"]
	if k, err := svc.Get(ctx, id); k != nil || !errors.Is(err, keyadmin.ErrInvalidRecord) || errors.Is(err, keyadmin.ErrNotFound) {
		t.Errorf("Get = %+v, %v; want ErrInvalidRecord", k, err)
	}
	keys, err := svc.List(ctx, keyadmin.Filter{Status: keyadmin.Active})
	if err != nil || len(keys) != len(ids) {
		t.Fatalf("List = %d keys, %v; want the %d invalid ones, whatever the filter", len(keys), err, len(ids))
	}
	for _, k := range keys {
		if k.Record != nil || !errors.Is(k.Err, keyadmin.ErrInvalidRecord) {
			t.Errorf("List row %s = %+v; want no record and ErrInvalidRecord", k.ID, k)
		}
	}
	report, err := svc.Audit(ctx, keyadmin.AuditOptions{})
	if err != nil || len(report) != len(ids) {
		t.Errorf("Audit = %+v, %v; want every key", report, err)
	}
	for _, a := range report {
		if len(a.Findings) != 1 || a.Findings[0].Code != keyadmin.FindingUnreadable {
			t.Errorf("Audit of %s = %+v; want unreadable", a.ID, a.Findings)
		}
	}
	for name, do := range map[string]func() error{
		"Modify": func() error { _, err := svc.Modify(ctx, id, keyadmin.Fields{Name: ptr("x")}); return err },
		"Revoke": func() error { _, err := svc.Revoke(ctx, id, ""); return err },
		"Rotate": func() error { _, err := svc.Rotate(ctx, id, time.Hour); return err },
	} {
		if err := do(); !errors.Is(err, keyadmin.ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
		}
	}
	var force *keyadmin.ForceError
	if _, err := svc.Delete(ctx, id, false); !errors.As(err, &force) || !errors.Is(force.Unreadable, keyadmin.ErrInvalidRecord) {
		t.Errorf("Delete without force: %v; want a *ForceError: its status is unknown", err)
	}
	_, err = svc.Delete(ctx, id, true)
	_, _, after := f.Store.Get(ctx, id)
	switch {
	case f.WritesRefusedWhileInvalid && (err == nil || errors.Is(err, keyadmin.ErrNotFound) || !errors.Is(after, keyadmin.ErrInvalidRecord)):
		t.Errorf("forced Delete on a store that refuses writes while invalid: %v, then %v; want an error and the record kept", err, after)
	case !f.WritesRefusedWhileInvalid && (err != nil || !errors.Is(after, keyadmin.ErrNotFound)):
		t.Errorf("forced Delete: %v, then %v; want it deleted", err, after)
	}
}

func testServicePeppers(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, _ := service(t, f, policy.AlgHMACSHA256)
	var field *keyadmin.FieldError
	if _, err := svc.Issue(ctx, keyadmin.Fields{Tenant: ptr("acme")}); !errors.As(err, &field) || field.Field != keyadmin.FieldHash {
		t.Fatalf("HMAC Issue without a pepper: %v, want a hash FieldError", err)
	}
	setPepper := func(v int) {
		t.Helper()
		if svc.Caps().PepperRotation {
			if got, err := svc.RotatePepper(ctx); err != nil || got != v {
				t.Fatalf("RotatePepper = %d, %v; want %d", got, err, v)
			}
			return
		}
		if _, err := svc.RotatePepper(ctx); !errors.Is(err, keyadmin.ErrUnsupported) {
			t.Fatalf("RotatePepper without the capability: %v, want ErrUnsupported", err)
		}
		p := policy.Peppers{Current: v, Versions: map[int][]byte{}}
		for i := 1; i <= v; i++ {
			p.Versions[i] = bytes.Repeat([]byte{byte(i)}, policy.MinPepperLen)
		}
		f.SetPeppers(t, p)
	}
	setPepper(1)
	k1 := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	setPepper(2)
	k2 := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	p, err := f.Store.Peppers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, err := policy.NewHasher(policy.AlgHMACSHA256, p)
	if err != nil {
		t.Fatal(err)
	}
	for prefix, k := range map[string]*keyadmin.Issued{"hmac-sha256:v1:": k1, "hmac-sha256:v2:": k2} {
		rec, _, err := f.Store.Get(ctx, k.ID)
		if err != nil || !strings.HasPrefix(rec.Hash, prefix) {
			t.Fatalf("key %s: %v, hash %q; want %s…", k.ID, err, rec.Hash, prefix)
		}
		if ok, err := h.Verify(k.RawKey, rec.Digest()); !ok || err != nil {
			t.Errorf("key under %s does not verify after the rotation: %v", prefix, err)
		}
	}
}

// testServiceUsage: with the usage capability, List and Audit find keys
// nobody used; without it, they say so rather than guess.
func testServiceUsage(t *testing.T, f Fixture) {
	ctx := ctxFor(t)
	svc, c := service(t, f, "")
	if svc.Caps().Usage != (f.RecordUse != nil) {
		t.Fatalf("Caps.Usage = %v, fixture records use: %v", svc.Caps().Usage, f.RecordUse != nil)
	}
	now := c.Now()
	c.Set(now.Add(-200 * 24 * time.Hour))
	used := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	idle := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	c.Set(now)
	unused := keyadmin.Filter{UnusedFor: 90 * 24 * time.Hour}
	if f.RecordUse == nil {
		if _, err := svc.List(ctx, unused); !errors.Is(err, keyadmin.ErrUnsupported) {
			t.Errorf("List by use without the capability: %v, want ErrUnsupported", err)
		}
		report, err := svc.Audit(ctx, keyadmin.AuditOptions{UnusedFor: unused.UnusedFor})
		if err != nil || hasFinding(report, "unused") {
			t.Errorf("Audit without the capability = %+v, %v; want no unused findings", report, err)
		}
		return
	}
	at := now.Add(-time.Hour)
	f.RecordUse(t, used.ID, at)
	if k, err := svc.Get(ctx, used.ID); err != nil || !k.LastUsed.Equal(at) {
		t.Errorf("Get: last used %v, %v; want %v", k.LastUsed, err, at)
	}
	keys, err := svc.List(ctx, unused)
	if err != nil || len(keys) != 1 || keys[0].ID != idle.ID {
		t.Errorf("List unused for 90d = %+v, %v; want only %s", keys, err, idle.ID)
	}
	report, err := svc.Audit(ctx, keyadmin.AuditOptions{UnusedFor: unused.UnusedFor})
	if err != nil || !hasFinding(onlyKey(report, idle.ID), "unused") || hasFinding(onlyKey(report, used.ID), "unused") {
		t.Errorf("Audit = %+v, %v; want unused for %s only", report, err, idle.ID)
	}
}

func onlyKey(report []keyadmin.Audited, id string) []keyadmin.Audited {
	for _, a := range report {
		if a.ID == id {
			return []keyadmin.Audited{a}
		}
	}
	return nil
}

func hasFinding(report []keyadmin.Audited, code string) bool {
	for _, a := range report {
		for _, f := range a.Findings {
			if f.Code == code {
				return true
			}
		}
	}
	return false
}
