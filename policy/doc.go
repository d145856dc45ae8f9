// Package policy is keygate's domain: the API key format, hashing, the per-key
// record stored in Vault, route requirements and the Evaluate decision.
//
// It uses only the standard library and does no I/O; it never sees a proto or
// a client, so every rule here is testable as a pure function.
package policy
