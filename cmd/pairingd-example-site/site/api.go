package site

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"time"
)

// apiClient calls pairingd's REST API (api/openapi.yaml) with the site's
// API key. Every answer that is not 2xx is an *apiError.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

// apiError is pairingd's error answer: {"error":{"code","message"}}.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("pairingd: %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error apiError `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
			return &apiError{Status: resp.StatusCode, Code: "http_error", Message: http.StatusText(resp.StatusCode)}
		}
		e.Error.Status = resp.StatusCode
		return &e.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// linkSubject links the site user userID to the person who signed in as
// sub: POST /v1/links/oidc.
func (c *apiClient) linkSubject(ctx context.Context, sub, userID string) error {
	return c.do(ctx, http.MethodPost, "/v1/links/oidc", map[string]any{"sub": sub, "user_id": userID}, nil)
}

// deepLink is POST /v1/deep-links' answer.
type deepLink struct {
	URL       string `json:"url"`
	QRPNG     string `json:"qr_png"` // base64
	ExpiresAt string `json:"token_expires_at"`
}

func (c *apiClient) deepLink(ctx context.Context, userID, channel, displayName string) (*deepLink, error) {
	var dl deepLink
	err := c.do(ctx, http.MethodPost, "/v1/deep-links", map[string]any{"user_id": userID, "channel": channel, "display_name": displayName}, &dl)
	return &dl, err
}

// notify queues a message to the person linked to userID.
func (c *apiClient) notify(ctx context.Context, userID, text string) error {
	return c.do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(userID)+"/messages", map[string]any{"text": text}, nil)
}

// linkView is GET /v1/links/{user_id}: the messengers that reach a user.
type linkView struct {
	Leads []struct {
		Channel   string `json:"channel"`
		FirstName string `json:"first_name"`
		Username  string `json:"username"`
		Blocked   bool   `json:"blocked"`
	} `json:"leads"`
}

// link is nil (and no error) when nobody is linked to userID.
func (c *apiClient) link(ctx context.Context, userID string) (*linkView, error) {
	var l linkView
	err := c.do(ctx, http.MethodGet, "/v1/links/"+url.PathEscape(userID), nil, &l)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "not_linked" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// Until is when the link expires, as a person reads it ("15:04 UTC").
func (d *deepLink) Until() string {
	t, err := time.Parse(time.RFC3339, d.ExpiresAt)
	if err != nil {
		return ""
	}
	return t.UTC().Format("15:04 UTC")
}

// QRDataURL is the QR code as an <img src>: a data: URL of the PNG.
func (d *deepLink) QRDataURL() template.URL {
	for _, r := range d.QRPNG {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=') {
			return ""
		}
	}
	return template.URL("data:image/png;base64," + d.QRPNG)
}
