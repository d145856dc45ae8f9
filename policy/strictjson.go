package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

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
