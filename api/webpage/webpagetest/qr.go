// Package webpagetest reads back what package webpage draws, for tests.
package webpagetest

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// ReadQR decodes a QR code PNG the way webpage draws one: the code and
// its quiet zone only, every module the same whole number of pixels. It
// reads it as a pure barcode, which is exact for such an image, and
// fails on any other (there is no finder-pattern search to fall back on:
// that search misreads about 1 in 125 scaled-up codes, and a drawing
// that needs it is a drawing a phone may misread too).
func ReadQR(b []byte) (string, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("not a PNG: %w", err)
	}
	if sz := img.Bounds().Size(); sz.X != sz.Y {
		return "", fmt.Errorf("QR image is %v, not square", sz)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		return "", fmt.Errorf("QR code does not decode as a pure barcode: %w", err)
	}
	return res.GetText(), nil
}
