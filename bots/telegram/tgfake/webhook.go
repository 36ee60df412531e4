package tgfake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// SecretHeader is the header Telegram puts the webhook's secret_token in.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// SetWebhookRetryDelay sets how long the delivery waits after a failed
// attempt before posting the same update again (default 50 ms; Telegram
// waits longer, and gives up after a while, which the fake never does).
func (s *Server) SetWebhookRetryDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryDelay = d
}

// deliverLoop posts queued updates to the webhook while one is set, oldest
// first and one at a time, like Telegram with max_connections 1. An update
// leaves the queue when the webhook answers 2xx; any other answer or a
// failed request is recorded and retried after the retry delay.
func (s *Server) deliverLoop() {
	defer s.wg.Done()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for {
		select {
		case <-s.done:
			return
		case <-s.deliverWake:
		}
		for {
			again, wait := s.deliverOne(client)
			if !again {
				break
			}
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-s.done:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
	}
}

// deliverOne posts the oldest queued update. It reports whether to go on
// at once (more to deliver), or after wait (the attempt failed).
func (s *Server) deliverOne(client *http.Client) (again bool, wait time.Duration) {
	s.mu.Lock()
	hook := s.webhook
	if s.closed || hook.URL == "" {
		s.mu.Unlock()
		return false, 0
	}
	if len(hook.AllowedUpdates) > 0 {
		s.queue = slices.DeleteFunc(s.queue, func(q queued) bool { return !slices.Contains(hook.AllowedUpdates, q.kind) })
	}
	if len(s.queue) == 0 {
		s.mu.Unlock()
		return false, 0
	}
	next := s.queue[0]
	delay := s.retryDelay
	s.mu.Unlock()

	status, err := post(s.stopCtx, client, hook, next.raw)

	s.mu.Lock()
	defer s.mu.Unlock()
	d := Delivery{UpdateID: next.id, Status: status}
	if err != nil {
		d.Err = err.Error()
	}
	s.deliveries = append(s.deliveries, d)
	ok := err == nil && status >= 200 && status < 300
	if ok {
		s.queue = slices.DeleteFunc(s.queue, func(q queued) bool { return q.id == next.id })
	} else {
		s.lastErrAt = time.Now().Unix()
		if err != nil {
			s.lastError = "Connection refused"
		} else {
			s.lastError = fmt.Sprintf("Wrong response from the webhook: %d %s", status, http.StatusText(status))
		}
	}
	s.notifyLocked()
	if s.closed {
		return false, 0
	}
	if ok {
		return true, 0
	}
	return true, delay
}

func post(ctx context.Context, client *http.Client, hook Webhook, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if hook.SecretToken != "" {
		req.Header.Set(SecretHeader, hook.SecretToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
