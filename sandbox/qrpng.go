package sandbox

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"github.com/boombuler/barcode/qr"
)

// QR image geometry: 6 pixels per module and the 4-module quiet zone the QR
// standard requires (boombuler/barcode draws none, and phone scanners and
// decoders need it).
const (
	pixelsPerModule = 6
	quietZone       = 4
)

var qrPalette = color.Palette{color.White, color.Black}

// RenderPNG draws content as a QR code (error correction level M, as
// payment QRs commonly use) and returns the PNG bytes: a two-colour
// paletted image, a few kilobytes for a QR Ph payload.
func RenderPNG(content string) ([]byte, error) {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("encoding QR: %w", err)
	}
	modules := code.Bounds().Dx()
	side := (modules + 2*quietZone) * pixelsPerModule
	img := image.NewPaletted(image.Rect(0, 0, side, side), qrPalette) // index 0: white
	for my := 0; my < modules; my++ {
		for mx := 0; mx < modules; mx++ {
			if color.GrayModel.Convert(code.At(mx, my)).(color.Gray).Y >= 128 {
				continue
			}
			x0, y0 := (mx+quietZone)*pixelsPerModule, (my+quietZone)*pixelsPerModule
			for y := y0; y < y0+pixelsPerModule; y++ {
				row := img.Pix[y*img.Stride:]
				for x := x0; x < x0+pixelsPerModule; x++ {
					row[x] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding PNG: %w", err)
	}
	return buf.Bytes(), nil
}
