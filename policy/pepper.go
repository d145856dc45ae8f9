package policy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// PepperDoc is the stored form of Peppers, in Vault and in the file store:
//
//	{"current": 2, "versions": {"1": "<base64>", "2": "<base64>"}}
//
// Every version still named by a record's hash must stay in versions.
type PepperDoc struct {
	Current  int               `json:"current"`
	Versions map[string]string `json:"versions"`
}

// ParsePeppers decodes and checks the stored pepper document strictly,
// reporting every problem at once, each naming its field. Pepper bytes never
// appear in an error.
func ParsePeppers(data []byte) (Peppers, error) {
	var doc PepperDoc
	if err := decodeStrict("pepper", data, &doc); err != nil {
		return Peppers{}, err
	}
	var errs []error
	p := Peppers{Current: doc.Current, Versions: make(map[int][]byte, len(doc.Versions))}
	for _, name := range slices.Sorted(maps.Keys(doc.Versions)) {
		v, err := strconv.Atoi(name)
		if err != nil || v < 1 || strconv.Itoa(v) != name {
			errs = append(errs, fmt.Errorf("pepper field \"versions\": version %q is not an integer >= 1", name))
			continue
		}
		b, err := base64.StdEncoding.DecodeString(doc.Versions[name])
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("pepper field \"versions.%s\": not standard base64", name))
		case len(b) < MinPepperLen:
			errs = append(errs, fmt.Errorf("pepper field \"versions.%s\": %d bytes, need at least %d", name, len(b), MinPepperLen))
		default:
			p.Versions[v] = b
		}
	}
	if _, ok := doc.Versions[strconv.Itoa(p.Current)]; !ok {
		errs = append(errs, fmt.Errorf("pepper field \"current\": version %d is not in versions", p.Current))
	}
	if err := errors.Join(errs...); err != nil {
		return Peppers{}, err
	}
	return p, nil
}

// Doc returns the stored form of p.
func (p Peppers) Doc() PepperDoc {
	versions := make(map[string]string, len(p.Versions))
	for v, b := range p.Versions {
		versions[strconv.Itoa(v)] = base64.StdEncoding.EncodeToString(b)
	}
	return PepperDoc{Current: p.Current, Versions: versions}
}
