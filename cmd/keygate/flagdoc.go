package main

import (
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// The README's flag tables are printed from the flag sets
// (`keygate serve --help-markdown`, `keygate check --help-markdown`), and
// TestREADMEFlagTables checks that the README holds exactly that: a flag,
// its default and its meaning are written once, in the code.
//
// A flag's meaning is its usage string, in which a "quoted" span is code
// in Markdown. Annotations add what only the table needs.
const (
	docUnset   = "keygate_docs_unset" // what an empty default means ("off"), instead of "none"
	docSee     = "keygate_docs_see"   // "Title|target" links, relative to docs/configuration.md where the serve table lives
	docGroup   = "keygate_docs_group" // the table the flag is listed in ("" or storeGroup)
	storeGroup = "store"
)

// docs annotates flag name for the flag table: the text for an empty
// default (unset, "" for "none") and links to sections ("Title|target",
// target relative to docs/configuration.md, e.g. "../README.md#cache").
func docs(fs *pflag.FlagSet, name, unset string, see ...string) {
	if unset != "" {
		_ = fs.SetAnnotation(name, docUnset, []string{unset})
	}
	if len(see) > 0 {
		_ = fs.SetAnnotation(name, docSee, see)
	}
}

// flagDocs describe a command's flag tables.
type flagDocs struct {
	intro  string // Markdown before the first table
	tables []flagTable
}

// flagTable lists the flags of one group, in the order they were defined.
type flagTable struct {
	intro   string      // Markdown before the table
	group   string      // the docGroup annotation of its flags
	envOnly [][3]string // rows for settings that are only variables (Markdown)
}

var serveDocs = flagDocs{
	intro: "Every flag can also be set by an environment variable: `KEYGATE_` + the flag name in upper case with `-` → `_`\n" +
		"(`--found-ttl` ↔ `KEYGATE_FOUND_TTL`). A flag given on the command line wins.",
	tables: []flagTable{{}, {
		intro: "The store flags, which `keygate keys` and `keygate pepper` take too:",
		group: storeGroup,
		envOnly: [][3]string{{"`" + secretIDEnv + "` (env only)", "none",
			"the AppRole secret id itself; use it or `--vault-approle-secret-id-file`, not both (no flag, so it never shows in `ps`)"}},
	}},
}

var checkDocs = flagDocs{
	intro:  "Each flag can also be set by its `KEYGATE_*` variable (`--key-file` ↔ `KEYGATE_KEY_FILE`).",
	tables: []flagTable{{}},
}

// writeFlagDocs prints d's tables of fs's flags as Markdown. Hidden,
// deprecated and help flags are left out.
func writeFlagDocs(w io.Writer, fs *pflag.FlagSet, d flagDocs) error {
	var b strings.Builder
	b.WriteString(d.intro + "\n")
	for _, t := range d.tables {
		if t.intro != "" {
			b.WriteString("\n" + t.intro + "\n")
		}
		b.WriteString("\n| flag | default | meaning |\n|---|---|---|\n")
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Deprecated != "" || f.Name == "help" || annotation(f, docGroup) != t.group {
				return
			}
			b.WriteString("| `--" + f.Name + "` | " + docDefault(f) + " | " + docMeaning(f) + " |\n")
		})
		for _, r := range t.envOnly {
			b.WriteString("| " + r[0] + " | " + r[1] + " | " + r[2] + " |\n")
		}
	}
	b.WriteString("\n") // a blank line ends the table before what follows
	_, err := io.WriteString(w, b.String())
	return err
}

func annotation(f *pflag.Flag, key string) string {
	if v := f.Annotations[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// docDefault is the default column: the flag's default as code, or what
// an empty one means.
func docDefault(f *pflag.Flag) string {
	v := f.DefValue
	if v == "" || v == "[]" {
		if u := annotation(f, docUnset); u != "" {
			return markdown(u)
		}
		return "none"
	}
	if f.Value.Type() == "duration" {
		v = shortDuration(v)
	}
	return "`" + v + "`"
}

// docMeaning is the usage string as Markdown, with its links.
func docMeaning(f *pflag.Flag) string {
	m := markdown(f.Usage)
	var links []string
	for _, s := range f.Annotations[docSee] {
		title, anchor, _ := strings.Cut(s, "|")
		links = append(links, "["+title+"]("+anchor+")")
	}
	if len(links) > 0 {
		m += "; see " + strings.Join(links, ", ")
	}
	return m
}

// markdown turns a usage string into table-cell Markdown: "quoted" spans
// become code; outside them | and * are escaped.
func markdown(s string) string {
	var b strings.Builder
	for i, part := range strings.Split(s, `"`) {
		if i%2 == 1 {
			b.WriteString("`" + part + "`")
			continue
		}
		b.WriteString(strings.NewReplacer("|", `\|`, "*", `\*`).Replace(part))
	}
	return b.String()
}

// shortDuration writes 5m0s as 5m and 1h0m0s as 1h.
func shortDuration(d string) string {
	if d == "0s" {
		return "0"
	}
	if strings.HasSuffix(d, "m0s") {
		d = strings.TrimSuffix(d, "0s")
	}
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	return d
}
