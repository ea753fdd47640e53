package sandbox

import (
	"errors"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/policy"
)

// providerExample is the raw QR Ph text from the provider's simulate page
// (modulus-api.md section 6.1); its CRC 12C0 is a fixture from outside.
const providerExample = "00020101021228820011ph.ppmi.p2m0111CUOBPHM2XXX03258eff02de-e172-4b0d-bc5b-3041288500100000705033015204601653036085406100.005802PH5912MAIN ACCOUNT6006MANILA630412C0"

func TestCRC16KnownValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
	}{
		{"123456789", 0x29B1}, // the CRC-16/CCITT-FALSE check value
		{"", 0xFFFF},
		{providerExample[:len(providerExample)-4], 0x12C0},
	} {
		if got := CRC16(tc.in); got != tc.want {
			t.Errorf("CRC16(%.20q…) = %04X, want %04X", tc.in, got, tc.want)
		}
	}
}

func TestParseProviderExample(t *testing.T) {
	p, err := ParsePayload(providerExample)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"01"}, "12"},
		{[]string{"28", "00"}, "ph.ppmi.p2m"},
		{[]string{"28", "03"}, "8eff02de-e172-4b0d-bc5b-3"},
		{[]string{"53"}, "608"},
		{[]string{"54"}, "100.00"},
		{[]string{"59"}, "MAIN ACCOUNT"},
		{[]string{"63"}, "12C0"},
	} {
		if got, ok := p.Get(tc.path...); !ok || got != tc.want {
			t.Errorf("Get(%v) = %q, %v; want %q", tc.path, got, ok, tc.want)
		}
	}
	if _, ok := p.Get("62", "05"); ok {
		t.Error("the example has no template 62")
	}
}

func TestBuildPayloadRoundTrip(t *testing.T) {
	q := PaymentQR{
		TransactionID: "a78efd32-de3b-4854-b599-11ae9f98f97e",
		Reference:     "5e91bc6c-f7e2-4a39-ae0e-5e93985c94a4",
		Amount:        9800,
		Currency:      "PHP",
	}
	s, err := BuildPayload(q)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePayload(s)
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	want := map[string]string{
		"00": "01", "01": "12", "28/00": "ph.ppmi.p2m", "28/01": sandboxAcquirer, "28/03": q.TransactionID[:25],
		"52": sandboxMCC, "53": "608", "54": "98.00", "58": "PH", "59": SandboxMerchantName, "60": SandboxMerchantCity,
		"62/05": q.Reference,
	}
	for path, v := range want {
		if got, ok := p.Get(strings.Split(path, "/")...); !ok || got != v {
			t.Errorf("%s = %q, want %q", path, got, v)
		}
	}
	if !strings.HasPrefix(s, "000201010212") || p.Fields[len(p.Fields)-1].ID != "63" {
		t.Fatalf("layout: %s", s)
	}
	if _, err := BuildPayload(PaymentQR{TransactionID: "x", Reference: "r", Amount: 100, Currency: "EUR"}); err == nil {
		t.Error("EUR has no code here and must be refused")
	}
	if _, err := BuildPayload(PaymentQR{TransactionID: "x", Reference: "r", Amount: 0, Currency: "PHP"}); err == nil {
		t.Error("a zero amount must be refused")
	}
	big, _ := policy.ParseAmount("99999.99")
	if _, err := BuildPayload(PaymentQR{TransactionID: q.TransactionID, Reference: strings.Repeat("R", 36), Amount: big, Currency: "PHP"}); err != nil {
		t.Fatalf("largest amount and longest reference: %v", err)
	}
}

func TestParsePayloadRejects(t *testing.T) {
	flip := []byte(providerExample)
	flip[60] = 'X' // inside template 28: content changes, CRC does not
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrNotEMVCo},
		{"transaction id", "a78efd32-de3b-4854-b599-11ae9f98f97e", ErrNotEMVCo},
		{"tampered content", string(flip), ErrCRCMismatch},
		{"wrong crc", providerExample[:len(providerExample)-4] + "12C1", ErrCRCMismatch},
		{"lowercase hex crc still checked", providerExample[:len(providerExample)-4] + "12c1", ErrCRCMismatch},
		{"no crc", providerExample[:len(providerExample)-8], ErrNotEMVCo},
		{"truncated", providerExample[:len(providerExample)-2], ErrNotEMVCo},
		{"length past the end", "000201" + "5499100.00", ErrNotEMVCo},
		{"zero length", "0002015400" + "6304ABCD", ErrNotEMVCo},
		{"wrong format indicator", withCRC("000202"), ErrNotEMVCo},
		{"repeated id", withCRC("000201010212010211"), ErrNotEMVCo},
		{"bad template", withCRC("000201" + "2804abcd"), ErrNotEMVCo},
		{"control character", withCRC("000201" + "5903a\nb"), ErrNotEMVCo},
		{"too long", strings.Repeat("0", 600), ErrNotEMVCo},
		{"not utf-8", withCRC("000201" + "5902\xff\xfe"), ErrNotEMVCo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePayload(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// withCRC appends a valid CRC so that a test reaches the check after it.
func withCRC(s string) string {
	s += crcFieldPrefix
	return s + hex16(CRC16(s))
}

func hex16(v uint16) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[v>>12], digits[v>>8&0xF], digits[v>>4&0xF], digits[v&0xF]})
}

// FuzzParsePayload feeds untrusted qrBody text (the simulate call takes it
// from the caller) to the parser: it must never panic, and whatever it
// accepts must have a CRC that verifies and start with 000201.
func FuzzParsePayload(f *testing.F) {
	f.Add(providerExample)
	f.Add("000201")
	f.Add(withCRC("000201010212"))
	f.Add(withCRC("00020101021262090505ABCDE"))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePayload(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, "000201") || len(p.Fields) < 2 {
			t.Fatalf("accepted %q", s)
		}
		if got := CRC16(s[:len(s)-4]); hex16(got) != strings.ToUpper(s[len(s)-4:]) {
			t.Fatalf("accepted %q with a CRC that does not verify", s)
		}
	})
}
