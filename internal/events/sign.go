package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Standard Webhooks signing (https://www.standardwebhooks.com): every
// request carries
//
//	webhook-id:        the event id (the same on every attempt)
//	webhook-timestamp: the attempt's time, Unix seconds
//	webhook-signature: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))
//
// where key is the webhook's secret, "whsec_" + base64 of its bytes.

// Secret is a webhook's signing key. Its String never shows the key.
type Secret struct{ key []byte }

// Bounds of a secret's decoded length (the spec: at least 24 bytes).
const (
	minSecret = 24
	maxSecret = 64
)

// secretPrefix marks a Standard Webhooks symmetric secret.
const secretPrefix = "whsec_"

// ParseSecret reads a secret in its Standard Webhooks form, "whsec_"
// followed by the base64 of 24 to 64 random bytes. Errors never hold it.
func ParseSecret(s string) (Secret, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), secretPrefix)
	if !ok {
		return Secret{}, errors.New(`not a Standard Webhooks secret: want "whsec_" followed by base64`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Secret{}, errors.New(`the part after "whsec_" is not standard base64`)
	}
	if len(key) < minSecret || len(key) > maxSecret {
		return Secret{}, fmt.Errorf("the secret is %d bytes; want %d to %d", len(key), minSecret, maxSecret)
	}
	return Secret{key: key}, nil
}

// String hides the key.
func (Secret) String() string { return "whsec_<redacted>" }

// GoString hides the key from %#v too.
func (s Secret) GoString() string { return s.String() }

// Sign returns the webhook-signature header value for one attempt.
func (s Secret) Sign(id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
