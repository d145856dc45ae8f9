package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// decodeStrict decodes the JSON document data into v (a pointer): repeated
// keys, names in another case, unknown fields, wrong types and trailing data
// are errors naming the field, each prefixed with what, e.g. `record field
// "scopes": got JSON number, want an array of strings`.
func decodeStrict(what string, data []byte, v any) error {
	if err := checkNames(data, reflect.TypeOf(v)); err != nil {
		return describeJSONError(what, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: trailing data after the JSON value", what)
	}
	return nil
}

func describeJSONError(what string, err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("%s field %q: got JSON %s, want %s", what, typeErr.Field, typeErr.Value, jsonKind(typeErr.Type))
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%s field %s: unknown field", what, msg)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "field "); ok { // from checkNames
		return fmt.Errorf("%s field %s", what, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "an integer"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	}
	return "an object"
}

// checkNames walks a JSON document alongside the Go type it will decode
// into and rejects what encoding/json would silently accept: a key repeated
// in one object (the last would win) and a struct field named in another
// case ("STATUS" would fill Status). Either could make keygate read a
// record differently from a human or another tool. Errors name the field.
func checkNames(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	return walkJSON(dec, t, "")
}

func walkJSON(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkJSON(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case '{':
		if err := walkObject(dec, t, path); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

func walkObject(dec *json.Decoder, t reflect.Type, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		field := key
		if path != "" {
			field = path + "." + key
		}
		if seen[key] {
			return fmt.Errorf("field %q: appears twice", field)
		}
		seen[key] = true
		var ft reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			if ft = structField(t, key); ft == nil {
				return fmt.Errorf("field %q: unknown field (names are case-sensitive)", field)
			}
		case t != nil && t.Kind() == reflect.Map:
			ft = t.Elem()
		}
		if err := walkJSON(dec, ft, field); err != nil {
			return err
		}
	}
	return nil
}

// structField returns the type of t's field whose JSON name is exactly key.
func structField(t reflect.Type, key string) reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name == key {
			return f.Type
		}
	}
	return nil
}
