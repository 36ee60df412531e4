package telegram

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// callTimeout bounds every Bot API call but getUpdates, whose bound is the
// poll timeout plus pollSlack.
const (
	callTimeout = 15 * time.Second
	pollSlack   = 15 * time.Second
)

// ctxClient binds tgbotapi's requests, which carry no context, to one. It
// also drops net/http's *url.Error wrapper, whose text quotes the request
// URL and with it the token.
type ctxClient struct {
	ctx context.Context
	c   *http.Client
}

func (c ctxClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.c.Do(req.WithContext(c.ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	return resp, nil
}

// sdk returns a tgbotapi client whose requests run under ctx. It is built
// per call, so New does no network I/O (tgbotapi.NewBotAPI calls getMe)
// and no call outlives its context.
func (b *Bot) sdk(ctx context.Context) *tgbotapi.BotAPI {
	api := &tgbotapi.BotAPI{Token: b.cfg.Token, Client: ctxClient{ctx: ctx, c: b.http}, Buffer: 100}
	api.SetAPIEndpoint(b.cfg.APIEndpoint)
	return api
}

// call runs one Bot API method with raw parameters and returns its
// result. timeout 0 means callTimeout.
func (b *Bot) call(ctx context.Context, method string, params tgbotapi.Params, timeout time.Duration) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(timeout, callTimeout))
	defer cancel()
	resp, err := b.sdk(ctx).MakeRequest(method, params)
	if err != nil {
		return nil, b.apiError(method, err)
	}
	return resp.Result, nil
}

// request runs one tgbotapi config (sendMessage, editMessageText ...).
func (b *Bot) request(ctx context.Context, method string, c tgbotapi.Chattable) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := b.sdk(ctx).Request(c)
	if err != nil {
		return nil, b.apiError(method, err)
	}
	return resp.Result, nil
}

// requestRetrying runs a config, waiting out a 429's retry_after and trying
// again up to sendRetries times, as long as the wait is short and fits in
// ctx. A longer wait returns the 429 to the caller at once.
func (b *Bot) requestRetrying(ctx context.Context, method string, c tgbotapi.Chattable) (json.RawMessage, error) {
	for attempt := 0; ; attempt++ {
		res, err := b.request(ctx, method, c)
		wait := retryAfterOf(err)
		if err == nil || !errors.Is(err, ErrRateLimited) || attempt >= b.sendRetries || wait > b.maxRetryWait {
			return res, err
		}
		wait = max(wait, time.Second)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return res, err
		}
		b.log.Info("rate limited by Telegram; waiting", "channel", b.cfg.Name, "method", method, "retry_after", wait)
		if b.sleep(ctx, wait) != nil {
			return res, err
		}
	}
}

// apiError turns what tgbotapi returned into an *APIError free of the
// token.
func (b *Bot) apiError(method string, err error) error {
	var te *tgbotapi.Error
	if errors.As(err, &te) {
		return &APIError{
			Method: method, Code: te.Code, Description: redact(te.Message, b.cfg.Token),
			RetryAfter: time.Duration(te.RetryAfter) * time.Second, kind: classify(te.Code),
		}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	desc := err.Error()
	if errors.As(err, &syn) || errors.As(err, &typ) {
		desc = "the answer is not a Bot API answer: " + desc
	}
	return &APIError{Method: method, Description: redact(desc, b.cfg.Token), kind: ErrUnavailable, cause: contextCause(err)}
}
