// Package rules holds keygate's rules for other secret scanners: a gitleaks
// rule (gitleaks.toml), a TruffleHog custom detector (trufflehog.yaml) and
// a GitHub secret-scanning custom pattern (github-secret-scanning.md). Its
// tests run the real gitleaks, and apply the TruffleHog and GitHub patterns,
// to generated fixtures. docs/leaks.md says how to use them.
package rules
