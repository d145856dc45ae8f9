package filestore_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/internal/keyadmin/storetest"
	"github.com/keygate/keygate/policy"
)

var _ keyadmin.Store = (*filestore.Store)(nil)

// The file store keeps no journal (servers watch the file) and no key
// use, cannot rotate peppers (they are edited by hand), and refuses
// every write while the file holds an invalid record.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Fixture {
		path := filepath.Join(t.TempDir(), "keys.yaml")
		s, err := filestore.OpenOrCreate(context.Background(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Fixture{
			Store: s,
			PutRaw: func(t *testing.T, keyID string, data []byte) {
				var rec any
				if err := json.Unmarshal(data, &rec); err != nil {
					t.Fatal(err)
				}
				editFile(t, path, func(doc map[string]any) { doc["keys"].(map[string]any)[keyID] = rec })
			},
			SetPeppers: func(t *testing.T, p policy.Peppers) {
				editFile(t, path, func(doc map[string]any) { doc["pepper"] = p.Doc() })
			},
			WritesRefusedWhileInvalid: true,
			RefusesMissingPepper:      true,
		}
	})
}

// editFile changes the key file as a person with an editor would.
func editFile(t *testing.T, path string, edit func(doc map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["keys"] == nil {
		doc["keys"] = map[string]any{}
	}
	edit(doc)
	if data, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".edit"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
