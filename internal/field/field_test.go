package field

import (
	"errors"
	"testing"
)

func TestListAndRename(t *testing.T) {
	var l List
	l.Addf("found-ttl", "must be > 0, got %s", "0s")
	l.Add("give both", "tls-cert", "tls-key")
	l.Join(errors.Join(&Error{Names: []string{"trusted-proxies[2]"}, Problem: `"nope": want a CIDR`}, errors.New("plain")))
	l.Join(nil)
	err := l.Err()
	if got := len(Split(err)); got != 4 {
		t.Fatalf("%d problems, want 4: %v", got, err)
	}
	renamed := Rename(Prefix(err, "x-"), func(n string) string { return "--" + n })
	want := "--x-found-ttl: must be > 0, got 0s\n--x-tls-cert and --x-tls-key: give both\n" +
		`--x-trusted-proxies[2]: "nope": want a CIDR` + "\nplain"
	if renamed.Error() != want {
		t.Errorf("renamed:\n%s\nwant:\n%s", renamed, want)
	}
	var none List
	if none.Err() != nil || Rename(nil, nil) != nil {
		t.Error("no problems must be a nil error")
	}
}
