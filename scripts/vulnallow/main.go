// Command vulnallow reads `govulncheck -format json` on stdin and fails when
// the code calls a vulnerability that scripts/govulncheck-allow.txt does not
// list with a reason. govulncheck has no way to acknowledge a finding, and
// some have no fix and do not apply to how keygate uses the module.
//
//	govulncheck -format json ./... | go run ./scripts/vulnallow scripts/govulncheck-allow.txt
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type message struct {
	Finding *struct {
		OSV   string `json:"osv"`
		Trace []struct {
			Module   string `json:"module"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vulnallow ALLOWLIST < govulncheck.json")
		os.Exit(2)
	}
	allowed, err := readAllow(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulnallow:", err)
		os.Exit(2)
	}
	called, bad, err := check(os.Stdin, allowed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulnallow: reading govulncheck's JSON:", err)
		os.Exit(2)
	}
	for id, mod := range called {
		if reason, ok := allowed[id]; ok {
			fmt.Printf("vulnallow: %s in %s is called, allowed: %s\n", id, mod, reason)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "vulnallow: called and not allowed: %s\n", strings.Join(bad, ", "))
		os.Exit(1)
	}
	fmt.Printf("vulnallow: %d called vulnerabilities, all allowed with a reason\n", len(called))
}

// check returns the vulnerabilities the code calls (osv id → module) and,
// sorted, those not allowed.
func check(r io.Reader, allowed map[string]string) (map[string]string, []string, error) {
	called := map[string]string{}
	dec := json.NewDecoder(r)
	for {
		var m message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, err
		}
		if f := m.Finding; f != nil && len(f.Trace) > 0 && f.Trace[0].Function != "" {
			called[f.OSV] = f.Trace[0].Module
		}
	}
	var bad []string
	for id, mod := range called {
		if _, ok := allowed[id]; !ok {
			bad = append(bad, id+" ("+mod+")")
		}
	}
	sort.Strings(bad)
	return called, bad, nil
}

// readAllow reads "ID reason..." lines; # starts a comment. Every ID needs
// a reason.
func readAllow(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: %s has no reason", path, n, id)
		}
		out[id] = strings.TrimSpace(reason)
	}
	return out, sc.Err()
}
