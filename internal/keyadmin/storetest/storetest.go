// Package storetest is the contract of keyadmin.Store: one suite every key
// store runs (vault and filestore do, in their contract_test.go), against
// the raw store and through a keyadmin.Service on it.
//
//	func TestStoreContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Fixture {
//			return storetest.Fixture{Store: newEmptyStore(t), PutRaw: ...}
//		})
//	}
//
// Where stores may differ, the Fixture says how this one behaves, and the
// suite checks that it does; keyadmin's package documentation lists the
// differences.
package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// Fixture is one new, empty store and what the suite needs to reach around
// it.
type Fixture struct {
	Store keyadmin.Store
	// PutRaw stores data (a JSON object) as keyID's record without
	// validating it, as a hand edit would. nil when the store validates
	// every write and has no way around it (keygate's Vault plugin): the
	// cases about malformed stored records are then skipped, saying so.
	PutRaw func(t *testing.T, keyID string, data []byte)
	// Journal returns the store's change journal so far, oldest first. nil
	// when the store keeps none; then it must not be a keyadmin.Journal.
	Journal func(t *testing.T) []JournalEntry
	// SetPeppers writes the store's peppers by hand. nil when the store
	// rotates them itself (keyadmin.PepperRotator).
	SetPeppers func(t *testing.T, p policy.Peppers)
	// RecordUse records that keyID was used at at, as a server does. nil
	// when the store keeps no use; then it must not be a
	// keyadmin.UsageReader.
	RecordUse func(t *testing.T, keyID string, at time.Time)
	// WritesRefusedWhileInvalid: the store refuses every write while it
	// holds a record that does not validate (the file store).
	WritesRefusedWhileInvalid bool
	// RefusesMissingPepper: the store refuses an hmac-sha256 record whose
	// pepper version it does not hold (the file store); otherwise it
	// stores it (Vault), though it can never verify.
	RefusesMissingPepper bool
}

// JournalEntry is one change journal entry.
type JournalEntry struct {
	Op  string
	IDs []string
}

// Run runs the contract; open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) Fixture) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, f Fixture)
	}{
		{"CreateGetUpdate", testCreateGetUpdate},
		{"CreateTakenID", testCreateTakenID},
		{"InvalidRecordNotWritten", testInvalidRecordNotWritten},
		{"NotFound", testNotFound},
		{"ConcurrentUpdatesOneWins", testConcurrentUpdates},
		{"SoftDelete", testSoftDelete},
		{"List", testList},
		{"Malformed", testMalformed},
		{"Peppers", testPeppers},
		{"MissingPepper", testMissingPepper},
		{"Capabilities", testCapabilities},
		{"ServiceIssueGetList", testServiceIssue},
		{"ServiceModifyRevoke", testServiceModify},
		{"ServiceRotate", testServiceRotate},
		{"ServiceDelete", testServiceDelete},
		{"ServiceImport", testServiceImport},
		{"ServiceConcurrentModify", testServiceConcurrentModify},
		{"ServiceMalformed", testServiceMalformed},
		{"ServicePeppers", testServicePeppers},
		{"ServiceUsage", testServiceUsage},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// newRecord returns a fresh key id and a valid active record for it.
func newRecord(t *testing.T, tenant string) (string, *policy.Record) {
	t.Helper()
	format, err := policy.NewFormat(policy.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	rawKey, id, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	h, err := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &policy.Record{Hash: h.Hash(rawKey).String(), Tenant: tenant, Status: policy.StatusActive,
		Scopes: []string{"orders:read"}, ExpiresAt: "2099-01-01T00:00:00Z"}
	if err := rec.Validate(); err != nil {
		t.Fatal(err)
	}
	return id, rec
}

// same reports whether two records have the same fields.
func same(a, b *policy.Record) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clock is a settable clock for a Service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// service returns a Service on f's store with a clock at the current second.
func service(t *testing.T, f Fixture, hash string) (*keyadmin.Service, *clock) {
	t.Helper()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	svc, err := keyadmin.New(keyadmin.Config{Hash: hash, Now: c.Now}, f.Store)
	if err != nil {
		t.Fatal(err)
	}
	return svc, c
}

// journal returns f's journal, or nil when it keeps none.
func journal(t *testing.T, f Fixture) []JournalEntry {
	t.Helper()
	if f.Journal == nil {
		return nil
	}
	return f.Journal(t)
}

// checkJournal checks that the entries after the first `before` are want
// (for a store with a journal).
func checkJournal(t *testing.T, f Fixture, before int, want ...JournalEntry) {
	t.Helper()
	if f.Journal == nil {
		return
	}
	got := f.Journal(t)
	if len(got) < before {
		t.Fatalf("journal shrank from %d to %d entries", before, len(got))
	}
	got = got[before:]
	if len(got) != len(want) {
		t.Fatalf("journal entries %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Op != want[i].Op || !slices.Equal(got[i].IDs, want[i].IDs) {
			t.Errorf("journal entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
