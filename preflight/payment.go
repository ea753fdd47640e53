package preflight

import (
	"fmt"

	"github.com/qrphgate/qrphgate/policy"
)

// MaxProductionTestPayment is the largest --test-payment amount in
// production: the test is a real payment, by a real person, that the
// merchant then has to refund or keep.
const MaxProductionTestPayment policy.Centavos = 1000

// CheckTestAmount parses a --test-payment amount ("1.00") and refuses one
// above MaxProductionTestPayment in production. The policy's own range
// (minimum 1.00) is checked by the gateway like any create-QR.
func CheckTestAmount(amount string, production bool) (policy.Centavos, error) {
	c, err := policy.ParseAmount(amount)
	if err != nil {
		return 0, fmt.Errorf("--test-payment: %w", err)
	}
	if production && c > MaxProductionTestPayment {
		return 0, fmt.Errorf("--test-payment %s is above %s, the most preflight sends in production (the guide's test is 1.00)", c, MaxProductionTestPayment)
	}
	return c, nil
}
