package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// Type is an event type: the CloudEvents "type" attribute.
type Type string

// The event types. The set is closed: receivers and the
// keygate_events_delivered_total metric name these values.
const (
	KeyCreated  Type = "key.created"
	KeyUpdated  Type = "key.updated"
	KeyRotated  Type = "key.rotated"
	KeyRevoked  Type = "key.revoked"
	KeyLeaked   Type = "key.leaked" // a revocation with revoked_reason "leaked"
	KeyDeleted  Type = "key.deleted"
	KeyExpiring Type = "key.expiring"
	KeyExpired  Type = "key.expired"
	KeyUnused   Type = "key.unused"
)

// Types lists every Type.
var Types = []Type{KeyCreated, KeyUpdated, KeyRotated, KeyRevoked, KeyLeaked, KeyDeleted, KeyExpiring, KeyExpired, KeyUnused}

// LeakedReason is the revoked_reason that makes a revocation key.leaked
// (keygate scan --revoke and the leak endpoint write it).
const LeakedReason = "leaked"

// UnusedReason is the revoked_reason of keys auto-disabled for disuse.
const UnusedReason = "unused"

// Source is the CloudEvents "source" of every event.
const Source = "keygate"

// Event is one CloudEvents 1.0 event in its JSON form. It never holds a raw
// key: its data is built from a key's record, which holds only a hash, and
// the hash is left out.
type Event struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            Type   `json:"type"`
	Subject         string `json:"subject"` // the key id
	Time            string `json:"time"`    // when the fact happened, RFC 3339
	DataContentType string `json:"datacontenttype"`
	Data            Data   `json:"data"`
}

// Data is an event's data: the key as read when the event was produced.
type Data struct {
	KeyID         string   `json:"key_id"`
	Tenant        string   `json:"tenant,omitempty"`
	Name          string   `json:"name,omitempty"`
	Owner         string   `json:"owner,omitempty"`
	Status        string   `json:"status,omitempty"` // active, revoked or expired; empty for key.deleted
	Scopes        []string `json:"scopes,omitempty"`
	ExpiresAt     string   `json:"expires_at,omitempty"`
	RevokedReason string   `json:"revoked_reason,omitempty"`
	RotatedTo     string   `json:"rotated_to,omitempty"`
	LastUsed      string   `json:"last_used,omitempty"`
	Days          int      `json:"days,omitempty"`      // key.expiring: the threshold crossed (days before expiry)
	IdleDays      int      `json:"idle_days,omitempty"` // key.unused: days without use at the threshold
}

// eventID is deterministic: the same fact about the same key always gets the
// same id, so a repeat (after a failover, or a retry) can be deduplicated by
// receivers (Standard Webhooks: webhook-id is the idempotency key). fact
// says which occurrence: a journal version, an expiry, a threshold.
func eventID(t Type, keyID, fact string) string {
	h := sha256.Sum256([]byte(string(t) + "\x00" + keyID + "\x00" + fact))
	return "evt_" + hex.EncodeToString(h[:16])
}

// newEvent builds an event about keyID. rec may be nil (a deleted key);
// lastUsed is zero when unknown.
func newEvent(t Type, keyID, fact string, at time.Time, rec *policy.Record, lastUsed, now time.Time) Event {
	d := Data{KeyID: keyID}
	if rec != nil {
		d.Tenant = policy.Redact(rec.Tenant)
		d.Name = policy.Redact(rec.Name)
		d.Owner = policy.Redact(rec.Owner)
		d.Status = string(keyadmin.EffectiveStatus(rec, now))
		d.Scopes = slices.Clone(rec.Scopes)
		d.ExpiresAt = rec.ExpiresAt
		d.RevokedReason = policy.Redact(rec.RevokedReason)
		d.RotatedTo = rec.RotatedTo
	}
	if !lastUsed.IsZero() {
		d.LastUsed = lastUsed.UTC().Format(time.RFC3339)
	}
	return Event{SpecVersion: "1.0", ID: eventID(t, keyID, fact), Source: Source, Type: t, Subject: keyID,
		Time: at.UTC().Format(time.RFC3339Nano), DataContentType: "application/json", Data: d}
}

// Marshal is the event's JSON body as sent (and signed).
func (e Event) Marshal() ([]byte, error) { return json.Marshal(e) }

// revokedType is key.leaked for a key revoked as leaked, else key.revoked.
func revokedType(rec *policy.Record) Type {
	if rec != nil && rec.RevokedReason == LeakedReason {
		return KeyLeaked
	}
	return KeyRevoked
}
