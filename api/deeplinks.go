package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/api/webpage"
	"github.com/pairingd/pairingd/pairing"
)

// DeepLinkService is what the deep-link routes need of *pairing.Service.
type DeepLinkService interface {
	CreateDeepLink(ctx context.Context, req pairing.DeepLinkRequest) (pairing.DeepLink, error)
	DeepLinkByToken(ctx context.Context, token string) (pairing.DeepLink, error)
}

// qrSize is about the side of the QR code PNG in pixels (whole pixels per
// module, so a little less): large enough to scan from a screen, small
// enough to inline as base64 (a few KB).
const qrSize = 320

type deepLinkBody struct {
	UserID      string `json:"user_id"`
	Channel     string `json:"channel"`
	DisplayName string `json:"display_name"`
}

type deepLinkJSON struct {
	URL            string `json:"url"`
	Token          string `json:"token"`
	Channel        string `json:"channel"`
	TokenExpiresAt string `json:"token_expires_at"`
	QRPNG          string `json:"qr_png"`
}

// createDeepLink is POST /v1/deep-links: a one-time link that opens the
// channel's chat, and its QR code.
func (s *server) createDeepLink(c echo.Context) error {
	var in deepLinkBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	dl, err := s.svc.CreateDeepLink(c.Request().Context(), pairing.DeepLinkRequest{
		UserID: in.UserID, Channel: in.Channel, DisplayName: in.DisplayName, KeyID: keyID(c),
	})
	if err != nil {
		return err
	}
	png, err := qrPNG(dl.URL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, deepLinkJSON{
		URL: dl.URL, Token: dl.Token, Channel: dl.Channel, TokenExpiresAt: timeJSON(dl.ExpiresAt),
		QRPNG: base64.StdEncoding.EncodeToString(png),
	})
}

// deepLinkQR is GET /v1/deep-links/{token}/qr.png: the QR code of an
// unspent, unexpired deep link, as image/png.
func (s *server) deepLinkQR(c echo.Context) error {
	token, err := pathParam(c, "token")
	if err != nil {
		return err
	}
	dl, err := s.svc.DeepLinkByToken(c.Request().Context(), token)
	if err != nil {
		return err
	}
	png, err := qrPNG(dl.URL)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "image/png", png)
}

// qrPNG encodes a URL as a QR code PNG, medium error correction.
func qrPNG(url string) ([]byte, error) {
	png, err := webpage.QRPNG(url, qrSize)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	return png, nil
}
