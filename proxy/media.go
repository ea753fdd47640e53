package proxy

import (
	"mime"
	"strings"
)

// IsJSONMediaType accepts application/json and any application/*+json type.
func IsJSONMediaType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}
