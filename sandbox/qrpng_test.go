package sandbox

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// decodeQRPNG reads a PNG back to its text with ZXing's decoder (a second,
// independent implementation of the QR standard).
func decodeQRPNG(t testing.TB, b []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("QR decoder: %v", err)
	}
	return res.GetText()
}

func TestRenderPNGDecodesToPayloadWithValidCRC(t *testing.T) {
	payload, err := BuildPayload(PaymentQR{
		TransactionID: "a78efd32-de3b-4854-b599-11ae9f98f97e",
		Reference:     "ORDER-12345",
		Amount:        50000,
		Currency:      "PHP",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := RenderPNG(payload)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeQRPNG(t, b)
	if got != payload {
		t.Fatalf("decoded %q, want %q", got, payload)
	}
	p, err := ParsePayload(got)
	if err != nil {
		t.Fatalf("decoded payload does not verify: %v", err)
	}
	if amt, _ := p.Get("54"); amt != "500.00" {
		t.Fatalf("amount in QR = %q", amt)
	}
	if ref, _ := p.Get("62", "05"); ref != "ORDER-12345" {
		t.Fatalf("reference in QR = %q", ref)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// The quiet zone is there: the corner pixels are white.
	img, _ := png.Decode(bytes.NewReader(b))
	if r, _, _, _ := img.At(quietZone*pixelsPerModule-1, quietZone*pixelsPerModule-1).RGBA(); r != 0xffff {
		t.Fatal("no quiet zone around the symbol")
	}
	if cfg.Width != cfg.Height || cfg.Width%pixelsPerModule != 0 || len(b) > 8<<10 {
		t.Fatalf("image %dx%d, %d bytes", cfg.Width, cfg.Height, len(b))
	}
}

func TestProviderExampleRendersAndDecodes(t *testing.T) {
	b, err := RenderPNG(providerExample)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQRPNG(t, b); got != providerExample {
		t.Fatalf("decoded %q", got)
	}
}
