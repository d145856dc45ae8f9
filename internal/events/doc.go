// Package events is `keygate events`: it tells webhooks what happens to
// keys, as CloudEvents 1.0 JSON signed the Standard Webhooks way
// (webhook-id, webhook-timestamp, webhook-signature: HMAC-SHA256). Events
// never carry a raw key: their data comes from records, without the hash.
//
// Several replicas may run; a Runner sends only while it holds the lease
// its Coordinator keeps (vault.Store: a check-and-set KV entry; the file
// store: a flock). The sender produces events from three sources:
//
//	the change journal (Vault), every JournalPoll  key.updated, key.revoked, key.leaked, key.rotated, key.deleted
//	  or, without one (file store), a comparison    ... and key.created
//	  of every key with the last poll
//	the key ids, every ListInterval (Vault)        key.created (new keys are not journaled)
//	every key, every ScanInterval                  key.expiring, key.expired, key.unused (+ auto-disable)
//
// Each webhook has a bounded FIFO queue and one sender goroutine, which
// retries the head with backoff (head-of-line: per-webhook order is
// production order). The State saying how far the sender got is saved
// only once every event it covers is delivered or dead-lettered, so a new
// sender produces again what was not settled — with the same ids, which
// are a hash of the fact. Delivery is at least once. docs/events.md is the
// user's guide.
package events
