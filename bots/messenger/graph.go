package messenger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
)

// maxGraphAnswer bounds what is read of a Graph API answer.
const maxGraphAnswer = 1 << 20

// graphClient is the small part of the Graph API the adapter uses, for one
// Page: its token, and its app secret for appsecret_proof.
type graphClient struct {
	base   string
	token  string
	secret string
	proof  string
	http   *http.Client
	// Rate-limited calls (codes 4, 32, 613) are tried again up to retries
	// times, waiting backoff, 2*backoff, ... through sleep.
	retries int
	backoff time.Duration
	sleep   func(ctx context.Context, d time.Duration) error
	// observe is told the outcome of every call (health).
	observe func(err error)
}

func newGraphClient(p PageConfig, hc *http.Client, observe func(error)) *graphClient {
	return &graphClient{
		base:    p.GraphURL,
		token:   p.PageAccessToken,
		secret:  p.AppSecret,
		proof:   appSecretProof(p.AppSecret, p.PageAccessToken),
		http:    hc,
		retries: 3,
		backoff: 500 * time.Millisecond,
		sleep:   channel.Sleep,
		observe: observe,
	}
}

// appSecretProof is hex HMAC-SHA256(app secret, access token): Graph's
// proof that a call with this token comes from the app's server.
func appSecretProof(secret, token string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// call runs one Graph request, trying again with backoff while it is rate
// limited. Other failures are not retried here: a send that failed on the
// network may have been delivered.
func (c *graphClient) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, query, in, out)
		c.observe(err)
		if !errors.Is(err, ErrRateLimited) || attempt >= c.retries {
			return err
		}
		if c.sleep(ctx, c.backoff<<attempt) != nil {
			return err
		}
	}
}

func (c *graphClient) once(ctx context.Context, method, path string, query url.Values, in, out any) error {
	q := url.Values{}
	maps.Copy(q, query)
	q.Set("access_token", c.token)
	q.Set("appsecret_proof", c.proof)
	u := c.base + path + "?" + q.Encode()

	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("graph api: encode %s: %w: %w", path, ErrRejected, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		// The parse error would quote the URL: leave it out.
		return fmt.Errorf("graph api: cannot build request for %s: %w", redactURL(u), ErrRejected)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return newTransportError(method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxGraphAnswer))
	if err != nil {
		return newTransportError(method, u, err)
	}
	if resp.StatusCode >= 300 || bytes.Contains(data, []byte(`"error"`)) {
		if ge := c.graphError(resp.StatusCode, data); ge != nil {
			return ge
		}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("graph api: %s %s: unexpected answer: %w", method, redactURL(u), ErrUnavailable)
	}
	return nil
}

// graphError decodes Meta's error shape; nil when a 2xx answer merely
// mentions "error" somewhere else.
func (c *graphClient) graphError(status int, data []byte) *GraphError {
	var env struct {
		Error *struct {
			Message   string `json:"message"`
			Type      string `json:"type"`
			Code      int    `json:"code"`
			Subcode   int    `json:"error_subcode"`
			FBTraceID string `json:"fbtrace_id"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) != nil || env.Error == nil {
		if status < 300 {
			return nil
		}
		return &GraphError{HTTPStatus: status, Message: http.StatusText(status), kind: classify(status, 0, 0)}
	}
	e := env.Error
	return &GraphError{
		HTTPStatus: status, Code: e.Code, Subcode: e.Subcode, Type: e.Type,
		Message: scrub(e.Message, c.token, c.secret, c.proof), TraceID: scrub(e.FBTraceID, c.token, c.secret, c.proof),
		kind: classify(status, e.Code, e.Subcode),
	}
}

// --- Send API ---

type sendRequest struct {
	Recipient     recipient  `json:"recipient"`
	MessagingType string     `json:"messaging_type"`
	Tag           string     `json:"tag,omitempty"`
	Message       outMessage `json:"message"`
}

type recipient struct {
	ID string `json:"id"`
}

type outMessage struct {
	Text         string       `json:"text,omitempty"`
	Attachment   *attachment  `json:"attachment,omitempty"`
	QuickReplies []quickReply `json:"quick_replies,omitempty"`
}

type attachment struct {
	Type    string          `json:"type"`
	Payload templatePayload `json:"payload"`
}

type templatePayload struct {
	TemplateType string   `json:"template_type"`
	Text         string   `json:"text"`
	Buttons      []button `json:"buttons"`
}

type button struct {
	Type    string `json:"type"`
	Title   string `json:"title,omitempty"`
	URL     string `json:"url,omitempty"`
	Payload string `json:"payload,omitempty"`
}

type quickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

func (c *graphClient) send(ctx context.Context, req sendRequest) error {
	var out struct {
		MessageID string `json:"message_id"`
	}
	return c.call(ctx, http.MethodPost, "/me/messages", nil, req, &out)
}

// --- User Profile API ---

func (c *graphClient) userProfile(ctx context.Context, psid string) (pairing.Profile, error) {
	var out pairing.Profile
	q := url.Values{"fields": {"first_name,last_name,locale"}}
	err := c.call(ctx, http.MethodGet, "/"+url.PathEscape(psid), q, nil, &out)
	return out, err
}

// --- Messenger Profile API ---

func (c *graphClient) setMessengerProfile(ctx context.Context, profile any) error {
	return c.call(ctx, http.MethodPost, "/me/messenger_profile", nil, profile, nil)
}

// --- Account Linking ---

// psidForLinkingToken resolves an account_linking_token to the Page and
// the person's PSID.
func (c *graphClient) psidForLinkingToken(ctx context.Context, token string) (pageID, psid string, err error) {
	var out struct {
		ID        string `json:"id"`
		Recipient string `json:"recipient"`
	}
	q := url.Values{"fields": {"recipient"}, "account_linking_token": {token}}
	if err := c.call(ctx, http.MethodGet, "/me", q, nil, &out); err != nil {
		return "", "", err
	}
	return out.ID, out.Recipient, nil
}

// --- ID Matching ---

type pageScopedID struct {
	ID   string `json:"id"`
	Page struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"page"`
}

// idsForPages lists the ids the same person has on the business's other
// Pages, for a PSID or an app-scoped id.
func (c *graphClient) idsForPages(ctx context.Context, id string) ([]pageScopedID, error) {
	var out struct {
		Data []pageScopedID `json:"data"`
	}
	q := url.Values{"limit": {"100"}}
	err := c.call(ctx, http.MethodGet, "/"+url.PathEscape(id)+"/ids_for_pages", q, nil, &out)
	return out.Data, err
}

// --- Handover protocol ---

func (c *graphClient) passThreadControl(ctx context.Context, psid, targetAppID, metadata string) error {
	in := map[string]any{"recipient": recipient{ID: psid}, "target_app_id": json.Number(targetAppID), "metadata": metadata}
	return c.call(ctx, http.MethodPost, "/me/pass_thread_control", nil, in, nil)
}

func (c *graphClient) requestThreadControl(ctx context.Context, psid, metadata string) error {
	in := map[string]any{"recipient": recipient{ID: psid}, "metadata": metadata}
	return c.call(ctx, http.MethodPost, "/me/request_thread_control", nil, in, nil)
}
