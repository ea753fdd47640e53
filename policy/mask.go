package policy

import "strings"

// maskedGroup stands for a hidden group of an activation code.
const maskedGroup = "****"

// MaskActivationCode is an activation code as operators see it: every
// group but the last hidden, "A9X4-B7P2-Q6Z8-M3L5" as "****-****-****-M3L5",
// enough to tell a platform's merchants apart without showing a code. A
// value without groups (an unmatched result's activation-code header may
// hold anything) keeps its last four characters, and only when it has more
// than eight; "" stays "".
func MaskActivationCode(code string) string {
	if code == "" {
		return ""
	}
	if i := strings.LastIndexByte(code, '-'); i >= 0 {
		groups := strings.Count(code[:i], "-") + 1
		return strings.Repeat(maskedGroup+"-", groups) + code[i+1:]
	}
	if len(code) > 8 {
		return maskedGroup + code[len(code)-4:]
	}
	return maskedGroup
}
