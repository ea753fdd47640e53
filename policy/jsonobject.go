package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// WalkObject calls member for each member of the single JSON object in
// body, in order, and refuses anything else: invalid UTF-8, another JSON
// value, invalid JSON, data after the object. Structural failures are
// *Error with CodeInvalidJSON; member's own errors are returned as they are.
// It is the one strict object reader behind every untrusted JSON body.
func WalkObject(body []byte, member func(name string, value json.RawMessage) error) error {
	if !utf8.Valid(body) {
		return fieldErr(CodeInvalidJSON, "", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fieldErr(CodeInvalidJSON, "", "body must be a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fieldErr(CodeInvalidJSON, "", "body is not valid JSON")
		}
		name, _ := t.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return fieldErr(CodeInvalidJSON, "", "body is not valid JSON")
		}
		if err := member(name, value); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fieldErr(CodeInvalidJSON, "", "body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr(CodeInvalidJSON, "", "unexpected data after the JSON object")
	}
	return nil
}

// DecodeStringFields strictly decodes a JSON object whose members are all
// strings named in allowed: an unknown member is CodeUnknownField, a
// repeated one CodeInvalidJSON, a member that is not a string gets the code
// typeCode returns for it.
func DecodeStringFields(body []byte, allowed []string, typeCode func(field string) string) (map[string]string, error) {
	out := make(map[string]string, len(allowed))
	err := WalkObject(body, func(name string, value json.RawMessage) error {
		if !slices.Contains(allowed, name) {
			return fieldErr(CodeUnknownField, truncateField(name), "unknown field; allowed: "+strings.Join(allowed, ", "))
		}
		if _, dup := out[name]; dup {
			return fieldErr(CodeInvalidJSON, name, "field appears more than once")
		}
		var v string
		if len(value) == 0 || value[0] != '"' || json.Unmarshal(value, &v) != nil {
			return fieldErr(typeCode(name), name, "must be a JSON string")
		}
		out[name] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
