package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/keygate/keygate/internal/leakscan"
	"github.com/keygate/keygate/policy"
)

// scanned is one finding as --json prints it.
type scanned struct {
	Path    string `json:"path"`
	Commit  string `json:"commit,omitempty"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	KeyID   string `json:"key_id"`
	Masked  string `json:"masked"`
	Status  string `json:"status"`
	Live    bool   `json:"live"`
	Revoked bool   `json:"revoked,omitempty"`
	// Error says why the status is "error", or why --revoke failed.
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// scanReport is the --json document.
type scanReport struct {
	Findings []scanned      `json:"findings"`
	Summary  scanSummary    `json:"summary"`
	Stats    leakscan.Stats `json:"stats"`
	Errors   []string       `json:"errors,omitempty"`
}

type scanSummary struct {
	Findings int            `json:"findings"`
	Keys     int            `json:"keys"` // distinct key ids
	Live     int            `json:"live"`
	Revoked  int            `json:"revoked_now"` // by --revoke
	ByStatus map[string]int `json:"by_status"`
	Store    bool           `json:"store"` // statuses come from a store
}

// errText is an error's text with anything key-shaped redacted.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return policy.Redact(err.Error())
}

func toScanned(fd leakscan.Finding) scanned {
	s := scanned{Path: fd.Path, Commit: fd.Commit, Line: fd.Line, Column: fd.Column, KeyID: fd.KeyID, Masked: fd.Masked,
		Status: string(fd.Status), Live: fd.Live(), Revoked: fd.Revoked, Error: errText(fd.StatusErr)}
	if fd.RevokeErr != nil {
		s.Error = "not revoked: " + errText(cliError(fd.RevokeErr))
	}
	for _, w := range fd.Warnings {
		s.Warnings = append(s.Warnings, errText(w))
	}
	return s
}

func summarize(res *leakscan.Result, store bool) scanSummary {
	sum := scanSummary{Findings: len(res.Findings), ByStatus: map[string]int{}, Store: store}
	ids := map[string]bool{}
	revoked := map[string]bool{}
	for _, fd := range res.Findings {
		sum.ByStatus[string(fd.Status)]++
		if fd.Live() {
			sum.Live++
		}
		if fd.Revoked {
			revoked[fd.KeyID] = true
		}
		ids[fd.KeyID] = true
	}
	sum.Keys, sum.Revoked = len(ids), len(revoked)
	return sum
}

// print writes the report in the format the flags ask for.
func (f *scanFlags) print(e *env, res *leakscan.Result, store bool) error {
	switch {
	case f.jsonOut:
		rep := scanReport{Findings: []scanned{}, Summary: summarize(res, store), Stats: res.Stats}
		for _, fd := range res.Findings {
			rep.Findings = append(rep.Findings, toScanned(fd))
		}
		for _, err := range res.Errors {
			rep.Errors = append(rep.Errors, errText(err))
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case f.sarifOut:
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(toSARIF(res))
	}
	return printScanTable(e, res, store)
}

func printScanTable(e *env, res *leakscan.Result, store bool) error {
	sum := summarize(res, store)
	if len(res.Findings) == 0 {
		_, err := fmt.Fprintln(e.stdout, "No keygate keys found.")
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	history := false
	for _, fd := range res.Findings {
		history = history || fd.Commit != ""
	}
	header := "LOCATION\tKEY ID\tKEY\tSTATUS\tACTION"
	if history {
		header = "COMMIT\t" + header
	}
	fmt.Fprintln(tw, header)
	for _, fd := range res.Findings {
		action := "-"
		switch {
		case fd.Revoked:
			action = "revoked"
		case fd.RevokeErr != nil:
			action = "revoke FAILED"
		}
		row := fmt.Sprintf("%s:%d:%d\t%s\t%s\t%s\t%s", fd.Path, fd.Line, fd.Column, fd.KeyID, fd.Masked, fd.Status, action)
		if history {
			row = shortCommit(fd.Commit) + "\t" + row
		}
		fmt.Fprintln(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	note := ""
	if !store {
		note = " (no store: statuses unchecked, every key counts as live)"
	}
	_, err := fmt.Fprintf(e.stdout, "\n%d finding(s) of %d key(s); %d live%s.\n", sum.Findings, sum.Keys, sum.Live, note)
	return err
}

func shortCommit(c string) string {
	if c == "" {
		return "-"
	}
	return c[:min(12, len(c))]
}

// SARIF 2.1.0, the subset code-scanning tools read (GitHub code scanning
// among them): one rule, one result per finding.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifText         `json:"help"`
	DefaultConfiguration map[string]string `json:"defaultConfiguration"`
	Properties           map[string]any    `json:"properties"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine   int `json:"startLine"`
			StartColumn int `json:"startColumn"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

const sarifRuleID = "keygate/api-key"

func toSARIF(res *leakscan.Result) sarifLog {
	rule := sarifRule{
		ID: sarifRuleID, Name: "KeygateAPIKey",
		ShortDescription: sarifText{"keygate API key"},
		FullDescription: sarifText{"A keygate API key with a valid checksum. Its status says whether it works: " +
			"active keys must be revoked (keygate scan --revoke, or keygate keys revoke ID --reason leaked) and replaced."},
		Help: sarifText{"Revoke the key (keygate keys revoke ID --reason leaked), issue its owner a new one, " +
			"and remove it from the file and, for history, from the repository's history if it is public."},
		DefaultConfiguration: map[string]string{"level": "error"},
		Properties:           map[string]any{"tags": []string{"security", "secret"}, "precision": "very-high"},
	}
	run := sarifRun{Results: []sarifResult{}}
	run.Tool.Driver = sarifDriver{Name: "keygate scan", Version: version, InformationURI: "https://github.com/keygate/keygate/blob/main/docs/leaks.md",
		Rules: []sarifRule{rule}}
	for _, fd := range res.Findings {
		r := sarifResult{RuleID: sarifRuleID, Level: sarifLevel(fd.Status),
			Message: sarifText{fmt.Sprintf("keygate API key %s (id %s) is %s.", fd.Masked, fd.KeyID, fd.Status)},
			// One alert per key and file, however lines move.
			PartialFingerprints: map[string]string{"keygateKeyId/v1": fd.KeyID + ":" + filepath.ToSlash(fd.Path)},
			Properties:          map[string]any{"keyId": fd.KeyID, "status": string(fd.Status), "revoked": fd.Revoked}}
		if fd.Commit != "" {
			r.Properties["commit"] = fd.Commit
			r.Message.Text += " Added in commit " + fd.Commit + "."
		}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = filepath.ToSlash(fd.Path)
		loc.PhysicalLocation.Region.StartLine, loc.PhysicalLocation.Region.StartColumn = fd.Line, fd.Column
		r.Locations = []sarifLocation{loc}
		run.Results = append(run.Results, r)
	}
	return sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
}

// sarifLevel: a key that may work is an error; a dead one a warning (it
// still should not be there); one the store does not know a note.
func sarifLevel(st leakscan.Status) string {
	switch st {
	case leakscan.Active, leakscan.Unchecked, leakscan.Error:
		return "error"
	case leakscan.Revoked, leakscan.Expired:
		return "warning"
	}
	return "note"
}
