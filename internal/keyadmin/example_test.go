package keyadmin_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
)

func ExampleNew() {
	dir, err := os.MkdirTemp("", "keyadmin-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := filestore.OpenOrCreate(ctx, filepath.Join(dir, "keys.yaml"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, err := keyadmin.New(keyadmin.Config{}, store) // sha256, prefix "kg", time.Now
	if err != nil {
		fmt.Println(err)
		return
	}
	tenant := "acme"
	key, err := svc.Issue(ctx, keyadmin.Fields{Tenant: &tenant, ExpiresIn: 90 * 24 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	// key.RawKey is shown to its owner once; the store keeps its hash.
	_, err = svc.Delete(ctx, key.ID, false)
	fmt.Println(errors.Is(err, keyadmin.ErrNeedsForce), svc.Caps().Journal)
	// Output: true false
}
