package proxy

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
)

// logSafe returns untrusted text (a payload's reference, a provider's id or
// error, a transport error) fit for a log field. Every character that a log
// viewer or terminal may take as a line break or a control is written as
// \uXXXX (\UXXXXXXXX beyond U+FFFF): C0 and C1 controls (NEL, U+0085,
// included), DEL, the line and paragraph separators U+2028 and U+2029, and
// format characters such as the bidi overrides. Invalid UTF-8 bytes become
// \xXX, and a backslash \\, so that an escape is never ambiguous. Plain
// text is returned as is, without copying.
//
// Zap's encoders escape C0 controls but write C1 controls and the Unicode
// separators raw, so a reference holding NEL would show as a forged log
// line in a viewer that breaks lines there.
func logSafe(s string) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			writeHex(&b, uint32(s[i]), 2)
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeInLog(r) && r > 0xffff:
			b.WriteString(`\U`)
			writeHex(&b, uint32(r), 8)
		case unsafeInLog(r):
			b.WriteString(`\u`)
			writeHex(&b, uint32(r), 4)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// LogString is a zap string field holding logSafe(value): use it for every
// value that did not come from the configuration or the gateway itself (an
// error's text that may quote one included: LogString("cause", err.Error())).
func LogString(key, value string) zap.Field { return zap.String(key, logSafe(value)) }

// unsafeInLog reports whether r may break or disguise a log line.
func unsafeInLog(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r)
}

func writeHex(b *strings.Builder, v uint32, width int) {
	h := strconv.FormatUint(uint64(v), 16)
	for n := len(h); n < width; n++ {
		b.WriteByte('0')
	}
	b.WriteString(h)
}
