package proxy

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestLogSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ORDER-1", "ORDER-1"},
		{"", ""},
		{"café ₱500", "café ₱500"},
		{"a\nb", `a\u000ab`},
		{"a\r\nb", `a\u000d\u000ab`},
		{"tab\there", `tab\u0009here`},
		{"del\x7f", `del\u007f`},
		{"ORDER-1\u0085forged", `ORDER-1\u0085forged`}, // NEL, a C1 control
		{"esc\u009b31m", `esc\u009b31m`},               // CSI, a C1 control
		{"a\u2028b\u2029c", `a\u2028b\u2029c`},         // line and paragraph separators
		{"rtl\u202eevil", `rtl\u202eevil`},             // a bidi override
		{`back\slash`, `back\\slash`},                  // so an escape is never ambiguous
		{"bad\xffutf8", `bad\xffutf8`},
		{"tag\U000E0001", `tag\U000e0001`}, // a format character beyond U+FFFF
	} {
		if got := logSafe(tc.in); got != tc.want {
			t.Errorf("logSafe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Whatever the string, the JSON and console encoders Caddy uses write one
// line with no character a log viewer takes as a line break or a terminal
// control.
func FuzzLogSafe(f *testing.F) {
	for _, s := range []string{"ORDER-1", "a\nb", "x\u0085y", "\u2028", "\\u0085", "\xc2\x85", "\x1b[31mred"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := logSafe(s)
		if !utf8.ValidString(out) {
			t.Fatalf("logSafe(%q) is not valid UTF-8: %q", s, out)
		}
		for _, r := range out {
			if unsafeInLog(r) {
				t.Fatalf("logSafe(%q) = %q keeps %U", s, out, r)
			}
		}
		for _, enc := range []zapcore.Encoder{
			zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
			zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		} {
			var buf bytes.Buffer
			log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zap.DebugLevel))
			log.Info("webhook", LogString("reference", s))
			line := strings.TrimSuffix(buf.String(), "\n")
			for _, r := range line {
				if r == '\t' { // the console encoder's own separator
					continue
				}
				if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
					t.Fatalf("log line for %q holds %U: %q", s, r, line)
				}
			}
		}
	})
}
