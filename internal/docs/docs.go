// Package docs reads keygate's user documentation (README.md and docs/*.md)
// for the tests that check it against the code: promises a test protects,
// flag tables, metric label values, links.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files are the documentation files under the repository root: README.md,
// then docs/*.md in name order, as paths relative to root.
func Files(root string) ([]string, error) {
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, fmt.Errorf("docs: %w", err)
	}
	sort.Strings(more)
	files := []string{"README.md"}
	for _, m := range more {
		rel, err := filepath.Rel(root, m)
		if err != nil {
			return nil, fmt.Errorf("docs: %w", err)
		}
		files = append(files, rel)
	}
	return files, nil
}

// Text is every documentation file's text, joined by blank lines, for
// tests that look for a sentence wherever it is documented.
func Text(root string) (string, error) {
	files, err := Files(root)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return "", fmt.Errorf("docs: %w", err)
		}
		b.Write(data)
		b.WriteString("\n\n")
	}
	return b.String(), nil
}
