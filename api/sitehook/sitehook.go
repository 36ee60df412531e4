// Package sitehook posts site events to the website's webhook, signed with
// HMAC-SHA256, and holds the reference verification a site can copy. It
// is the HTTP side of pairing.SiteEventWorker (pairing.EventSender).
//
// A request is
//
//	POST <site.webhook_url>
//	Content-Type: application/json
//	Pairingd-Event-Id: 42
//	Pairingd-Event-Type: link.created
//	Pairingd-Signature: t=1795428000,v1=<hex HMAC-SHA256(secret, "1795428000." + body)>
//
//	{"id":42,"type":"link.created","created_at":"...","user_id":"7","data":{...}}
package sitehook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// Header names.
const (
	HeaderSignature = "Pairingd-Signature"
	HeaderEventID   = "Pairingd-Event-Id"
	HeaderEventType = "Pairingd-Event-Type"
)

// Sign returns the hex HMAC-SHA256 of "<t>.<body>" under secret.
func Sign(secret []byte, t int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(t, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// SignatureHeader is the Pairingd-Signature value: "t=<unix>,v1=<hex>".
func SignatureHeader(secret []byte, t int64, body []byte) string {
	return "t=" + strconv.FormatInt(t, 10) + ",v1=" + Sign(secret, t, body)
}

// Verification errors.
var (
	ErrBadHeader = errors.New("sitehook: malformed signature header")
	ErrSignature = errors.New("sitehook: signature does not match")
	ErrTooOld    = errors.New("sitehook: signature timestamp outside the tolerance")
)

// Verify is what a site does with a request: it checks the signature over
// the raw body (before parsing it), in constant time, and that the
// timestamp is within tolerance of now (replay window). Several v1= parts
// are allowed (for a secret rotation); one match is enough.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var t int64
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadHeader
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return ErrBadHeader
			}
			t = n
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if t == 0 || len(sigs) == 0 {
		return ErrBadHeader
	}
	want := []byte(Sign(secret, t, body))
	match := false
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			match = true
		}
	}
	if !match {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return ErrTooOld
	}
	return nil
}

// Config is the site's webhook (yaml section site). Without WebhookURL no
// event is pushed; the site polls GET /v1/events instead.
type Config struct {
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecret keys the signature (Pairingd-Signature); at least 16
	// bytes, required with WebhookURL.
	WebhookSecret string `yaml:"webhook_secret"`
}

// DefaultConfig has no webhook.
func DefaultConfig() Config { return Config{} }

// Validate checks the configuration; each error names its key, never a
// value (the URL may hold a credential).
func (c Config) Validate() error {
	var errs []error
	if c.WebhookURL != "" {
		if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("webhook_url: must be an absolute http(s) URL"))
		}
		if c.WebhookSecret == "" {
			errs = append(errs, errors.New("webhook_secret: is required when webhook_url is set (or its _FILE variable)"))
		}
	}
	if c.WebhookSecret != "" && len(c.WebhookSecret) < 16 {
		errs = append(errs, errors.New("webhook_secret: must be at least 16 bytes"))
	}
	return errors.Join(errs...)
}

// Client is the sender of the configured webhook, whose POSTs count as
// failed after timeout (jobs.send_timeout); nil without WebhookURL.
func (c Config) Client(timeout time.Duration) (*Client, error) {
	if c.WebhookURL == "" {
		return nil, nil
	}
	return New(c.WebhookURL, []byte(c.WebhookSecret), timeout)
}

// Client posts events to one webhook URL. It is a pairing.EventSender.
type Client struct {
	url    string
	secret []byte
	http   *http.Client
	now    func() time.Time
}

var _ pairing.EventSender = (*Client)(nil)

// New returns a client posting to webhookURL with the given secret; each
// request is cut off after timeout. Redirects are not followed (a 3xx is
// a failure), so the signed body never goes somewhere unexpected.
func New(webhookURL string, secret []byte, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(webhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("sitehook: the webhook URL must be an absolute http(s) URL")
	}
	if len(secret) < 16 {
		return nil, errors.New("sitehook: the webhook secret must be at least 16 bytes")
	}
	return &Client{
		url:    webhookURL,
		secret: secret,
		http: &http.Client{
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}, nil
}

// SendEvent posts one event. 2xx is success; 410 Gone wraps
// pairing.ErrEventRejected; anything else, a timeout or a connection error
// is an error to retry. Error texts never hold the URL (it may carry a
// credential) nor the signature.
func (c *Client) SendEvent(ctx context.Context, e pairing.SiteEvent, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(string(body)))
	if err != nil {
		return errors.New("building the request failed")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pairingd-webhook/1")
	req.Header.Set(HeaderEventID, strconv.FormatInt(e.ID, 10))
	req.Header.Set(HeaderEventType, e.Type)
	req.Header.Set(HeaderSignature, SignatureHeader(c.secret, c.now().Unix(), body))
	resp, err := c.http.Do(req)
	if err != nil {
		return sendError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusGone:
		return fmt.Errorf("HTTP 410: %w", pairing.ErrEventRejected)
	default:
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
}

// sendError describes a transport failure without the URL that
// *url.Error would print.
func sendError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errors.New("timeout")
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	return fmt.Errorf("request failed: %v", err)
}
