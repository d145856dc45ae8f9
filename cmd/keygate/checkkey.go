package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/keygate/keygate/policy"
)

// maxKeyInput bounds what --key-file and --key - read. A key is well under
// 100 bytes; input this long is the wrong file, not a key.
const maxKeyInput = 4096

// rawKey is the key `keygate check` sends: --key, --key-file, or one line of
// stdin (--key -); "" sends none (to test missing_key). Errors name the flag
// and never quote the key or the file's content.
func (f *checkFlags) rawKey(stdin io.Reader) (string, error) {
	switch {
	case f.key != "" && f.keyFile != "":
		// Also when one comes from KEYGATE_KEY / KEYGATE_KEY_FILE: which
		// key was meant is ambiguous, so send neither.
		return "", errors.New("--key and --key-file are both set (directly or by KEYGATE_KEY / KEYGATE_KEY_FILE): give one")
	case f.keyFile != "":
		return readKeyFile(f.keyFile)
	case f.key == "-":
		return readKeyStdin(stdin)
	}
	return f.key, nil
}

// readKeyFile reads a file holding just the key.
func readKeyFile(path string) (string, error) {
	name := "--key-file " + policy.Redact(path) // a key pasted as the path is not echoed
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, withoutPath(err))
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxKeyInput+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, withoutPath(err))
	}
	return keyLine(name, string(data))
}

// readKeyStdin reads one line of stdin (so a key pasted at a terminal
// needs only Enter).
func readKeyStdin(stdin io.Reader) (string, error) {
	const name = "--key -"
	line, err := bufio.NewReader(io.LimitReader(stdin, maxKeyInput+1)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: reading stdin: %w", name, err)
	}
	return keyLine(name, line)
}

// keyLine is the key in s: one line, its newline (LF or CRLF) and trailing
// blanks dropped. Empty input and more than one line are errors naming
// flag; neither the key nor anything else of s is quoted.
func keyLine(flag, s string) (string, error) {
	if len(s) > maxKeyInput {
		return "", fmt.Errorf("%s: more than %d bytes: not a key", flag, maxKeyInput)
	}
	key := strings.TrimRight(strings.TrimSuffix(s, "\n"), " \t\r")
	switch {
	case strings.ContainsAny(key, "\r\n"):
		return "", fmt.Errorf("%s: more than one line: want only the key", flag)
	case key == "":
		return "", fmt.Errorf("%s: empty: want the key", flag)
	}
	return key, nil
}

// withoutPath drops the path from an *fs.PathError (the caller names the
// file, redacted), keeping the operation and the reason.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
