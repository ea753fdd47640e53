package policy

import (
	"errors"
	"strconv"
)

// Centavos is an amount in the smallest PHP unit. Amounts never pass through
// floating point: "500.00" is parsed straight to 50000.
type Centavos int64

// maxAmountDigits bounds the integer part so the conversion cannot overflow;
// the policy's own maximum is far lower.
const maxAmountDigits = 15

var errAmountFormat = errors.New(`amount must be a string with digits, a point and exactly two decimals, e.g. "500.00"`)

// ParseAmount parses the provider's amount format: one or more digits with no
// sign and no leading zero (except "0"), a point, exactly two digits.
func ParseAmount(s string) (Centavos, error) {
	n := len(s)
	if n < 4 || s[n-3] != '.' {
		return 0, errAmountFormat
	}
	intPart, frac := s[:n-3], s[n-2:]
	if len(intPart) > maxAmountDigits || (len(intPart) > 1 && intPart[0] == '0') {
		return 0, errAmountFormat
	}
	var v int64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, errAmountFormat
		}
		v = v*10 + int64(c-'0')
	}
	for i := 0; i < 2; i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return 0, errAmountFormat
		}
		v = v*10 + int64(c-'0')
	}
	return Centavos(v), nil
}

// String formats c the way the provider expects ("500.00").
func (c Centavos) String() string {
	neg := c < 0
	if neg {
		c = -c
	}
	s := strconv.FormatInt(int64(c/100), 10) + "." + strconv.FormatInt(int64(c%100)/10, 10) + strconv.FormatInt(int64(c%10), 10)
	if neg {
		return "-" + s
	}
	return s
}
