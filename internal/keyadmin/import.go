package keyadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"sigs.k8s.io/yaml"

	"github.com/keygate/keygate/policy"
)

// MaxImportFile bounds an import file (100,000 keys with small policies).
const MaxImportFile = 64 << 20

var yamlLine = regexp.MustCompile(`line (\d+)`)

// ParseImport reads a whole import file (YAML or JSON, see
// policy.ParseImport) and checks every entry before anything is written,
// reporting every problem at once. No error quotes the file: it holds raw
// keys.
func (s *Service) ParseImport(data []byte) ([]policy.ImportEntry, error) {
	if len(data) > MaxImportFile {
		return nil, invalid(fmt.Errorf("import file: over %d bytes; split it", MaxImportFile))
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		// The parser's message may quote the file (a key): give its line only.
		where := ""
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			where = " near line " + m[1]
		}
		return nil, invalid(fmt.Errorf("import file: not valid YAML or JSON%s", where))
	}
	entries, err := policy.ParseImport(js, s.format, s.clock())
	if err != nil {
		return nil, invalid(fmt.Errorf("nothing imported: %w", err))
	}
	return entries, nil
}

// ImportOutcome is what Import did with one key.
type ImportOutcome int

const (
	// OutcomeImported: created.
	OutcomeImported ImportOutcome = iota + 1
	// OutcomeExists: imported before, with the same record (times aside).
	OutcomeExists
	// OutcomeDiffers: imported before; its record changed since. Not changed:
	// use Modify.
	OutcomeDiffers
	// OutcomeDeleted: imported, then deleted. Not re-created: ids are never
	// reused (Caps.Restore: the operator can restore it).
	OutcomeDeleted
	// OutcomeChecked: a dry run checked it and wrote nothing.
	OutcomeChecked
)

var outcomeNames = [...]string{OutcomeImported: "imported", OutcomeExists: "exists", OutcomeDiffers: "differs", OutcomeDeleted: "deleted", OutcomeChecked: "checked"}

func (o ImportOutcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("ImportOutcome(%d)", int(o))
}

// ImportRow is one key of an import report.
type ImportRow struct {
	ID, Tenant, Name string
	Outcome          ImportOutcome
}

// ImportReport is what Import did, row by row in the file's order.
type ImportReport struct {
	Rows     []ImportRow
	Warnings []error // *JournalError
}

// Import creates each entry (all checked by ParseImport) with
// check-and-set. A key already there is reported (OutcomeExists, OutcomeDiffers,
// OutcomeDeleted), never overwritten, so re-running an interrupted import
// finishes it. The first failure stops the import; the report says what
// was done up to it and is returned with the error. New keys are journaled
// as one entry (JournalOpNewKeys), so replicas forget cached "unknown"
// answers. dryRun writes nothing and reports every row Checked.
func (s *Service) Import(ctx context.Context, entries []policy.ImportEntry, dryRun bool) (*ImportReport, error) {
	rep := &ImportReport{Rows: make([]ImportRow, 0, len(entries))}
	created := false
	var err error
	for _, e := range entries {
		row := ImportRow{ID: e.ID, Tenant: e.Record.Tenant, Name: e.Record.Name, Outcome: OutcomeChecked}
		if !dryRun {
			if row.Outcome, err = s.importOne(ctx, e); err != nil {
				err = fmt.Errorf("key %s: %w (%d of %d keys done; run the same import again to finish)", e.ID, err, len(rep.Rows), len(entries))
				break
			}
		}
		created = created || row.Outcome == OutcomeImported
		rep.Rows = append(rep.Rows, row)
	}
	if created {
		rep.Warnings = s.record(ctx, JournalOpNewKeys)
	}
	return rep, err
}

func (s *Service) importOne(ctx context.Context, e policy.ImportEntry) (ImportOutcome, error) {
	err := s.store.Create(ctx, e.ID, e.Record)
	switch {
	case err == nil:
		return OutcomeImported, nil
	case !errors.Is(err, ErrExists):
		return 0, err
	}
	have, _, gerr := s.store.Get(ctx, e.ID)
	switch {
	case errors.Is(gerr, ErrNotFound):
		return OutcomeDeleted, nil // deleted: the store keeps the id
	case gerr != nil:
		return 0, fmt.Errorf("exists, and cannot be read: %w", gerr)
	case have.Hash != e.Record.Hash:
		return 0, refuse(ErrIDTaken, "the id is taken by a different key")
	case !samePolicy(have, e.Record):
		return OutcomeDiffers, nil
	}
	return OutcomeExists, nil
}

// samePolicy compares two records but for the times keygate writes.
func samePolicy(a, b *policy.Record) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt, y.CreatedAt, y.UpdatedAt = "", "", "", ""
	ja, erra := json.Marshal(x)
	jb, errb := json.Marshal(y)
	return erra == nil && errb == nil && string(ja) == string(jb)
}
