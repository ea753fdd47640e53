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
//
// A body that is valid JSON (json.Valid, one pass without allocations) and
// an object is walked by walkValid, which can then take the grammar for
// granted; every other body goes through walkDecoder, encoding/json's
// token reader, for its errors. FuzzWalkObject checks that both give the
// same members and errors.
func WalkObject(body []byte, member func(name string, value json.RawMessage) error) error {
	if !utf8.Valid(body) {
		return fieldErr(CodeInvalidJSON, "", "body is not valid UTF-8")
	}
	if i := skipSpace(body, 0); i < len(body) && body[i] == '{' && json.Valid(body) {
		return walkValid(body, i, member)
	}
	return walkDecoder(body, member)
}

// walkValid walks the members of the object at body[i], body being valid
// JSON: each member's name (unescaped) and value (its bytes, as
// json.RawMessage would hold them).
func walkValid(body []byte, i int, member func(name string, value json.RawMessage) error) error {
	i = skipSpace(body, i+1)
	if body[i] == '}' {
		return nil
	}
	for {
		end := skipString(body, i)
		raw := body[i:end]
		var name string
		if bytes.IndexByte(raw, '\\') < 0 {
			name = string(raw[1 : len(raw)-1])
		} else if err := json.Unmarshal(raw, &name); err != nil {
			return fieldErr(CodeInvalidJSON, "", "body is not valid JSON")
		}
		i = skipSpace(body, skipSpace(body, end)+1) // past the colon
		end = skipValue(body, i)
		if err := member(name, json.RawMessage(body[i:end:end])); err != nil {
			return err
		}
		i = skipSpace(body, end)
		if body[i] == '}' {
			return nil
		}
		i = skipSpace(body, i+1) // past the comma
	}
}

// skipString returns the index after the JSON string at b[i] (valid JSON).
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the JSON value at b[i] (valid JSON).
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i // a number, true, false or null
	for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
		j++
	}
	return j
}

// walkDecoder is WalkObject through encoding/json's token reader.
func walkDecoder(body []byte, member func(name string, value json.RawMessage) error) error {
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
