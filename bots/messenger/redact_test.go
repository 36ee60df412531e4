package messenger

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
)

// No page token, app secret, appsecret_proof, account linking token,
// authorization code, PIN or BUID reaches a log line or an error string,
// through successes, Graph refusals and an unreachable Graph API.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, idMatching)
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Pairing message: PIN and BUID go to the chat only.
	e.deliver(fbfake.Text("5001", "m.1", "login"))
	pin, buid := pinOf(t, e.last())

	// Account linking, then its webhook with the code, and a forged one.
	e.fb.SetAccountLinkingToken(linkingToken, "5001")
	redirect, err := e.hub.AccountLinking(e.ctx, linkingToken, metaRedirect, "user-1")
	keep(err)
	u, _ := url.Parse(redirect)
	code := u.Query().Get("authorization_code")
	e.deliver(fbfake.AccountLinked("5001", code))
	e.deliver(fbfake.AccountLinked("5001", code+"x"))
	_, err = e.hub.AccountLinking(e.ctx, linkingToken+"-unknown", metaRedirect, "user-1")
	keep(err)

	// Graph refusals of every kind, in the webhook and through SendPIN.
	issued := e.issue("5002")
	for _, f := range [][2]int{{551, 0}, {10, 2018278}, {10, 2018300}, {190, 0}, {100, 0}, {2, 0}} {
		e.fb.FailNext(f[0], f[1])
		keep(e.hub.Channel("fb-shop").SendPIN(e.ctx, issued))
	}
	e.fb.FailNextOn(fbfake.EndpointUserProfile, 190, 0)
	e.fb.FailNextOn(fbfake.EndpointIDsForPages, 190, 0)
	e.fb.FailNext(613, 0)
	e.deliver(fbfake.Text("5003", "m.3", "help"))
	_, err = e.hub.LinkFacebook(e.ctx, "user-9", "424242")
	keep(err)

	// The Graph API unreachable: net/http's errors quote the whole URL.
	e.fb.Close()
	keep(e.hub.Channel("fb-shop").SendPIN(e.ctx, issued))
	_, err = e.hub.AccountLinking(e.ctx, linkingToken, metaRedirect, "user-1")
	keep(err)
	_, err = e.hub.LinkFacebook(e.ctx, "user-9", "424242")
	keep(err)
	keep(e.hub.SetupProfile(e.ctx, "fb-shop"))
	rec := e.post(secretA, fbfake.Delivery(pageA, fbfake.Text("5004", "m.4", "login")))
	if rec.Code != 200 {
		t.Fatalf("graph down: %d (the event is stored, the webhook answers 200)", rec.Code)
	}
	// The failure kept in the inbound queue is an error message too.
	for _, r := range e.inbound.Rows() {
		if r.LastError != "" {
			keep(errors.New(r.LastError))
		}
	}
	keep(e.hub.Health())

	secrets := map[string]string{
		"page token A": tokenA, "page token B": tokenB, "app secret A": secretA, "app secret B": secretB,
		"proof A": appSecretProof(secretA, tokenA), "proof B": appSecretProof(secretB, tokenB),
		"account linking token": linkingToken, "authorization code": code, "code signature": code[strings.IndexByte(code, '.')+1:],
		"PIN": pin, "BUID": buid, "verify token": verifyA,
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "REDACTED") || !strings.Contains(logs, "connection refused") {
		t.Fatalf("the unreachable-Graph path was not logged; the test proves nothing:\n%s", logs)
	}
	if len(errs) < 10 {
		t.Fatalf("only %d errors collected", len(errs))
	}
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("%s in logs", name)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s in error %q", name, err)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	raw := "https://graph.example/v21.0/me?access_token=" + tokenA + "&appsecret_proof=abc&account_linking_token=zzz&fields=recipient"
	got := redactURL(raw)
	if strings.Contains(got, tokenA) || strings.Contains(got, "abc") || strings.Contains(got, "zzz") || !strings.Contains(got, "fields=recipient") {
		t.Fatalf("redacted %q", got)
	}
	if redactURL("http://[::1") != "[unparsable url]" {
		t.Fatal("unparsable")
	}
}

// Meta's own message is scrubbed of the secrets the client knows, in case
// it ever echoes them.
func TestGraphErrorScrubsEchoedSecrets(t *testing.T) {
	t.Parallel()
	c := &graphClient{token: tokenA, secret: secretA, proof: appSecretProof(secretA, tokenA)}
	ge := c.graphError(400, []byte(`{"error":{"message":"bad token `+tokenA+` / `+secretA+`","type":"OAuthException","code":190,"fbtrace_id":"T"}}`))
	if strings.Contains(ge.Error(), tokenA) || strings.Contains(ge.Error(), secretA) || !errors.Is(ge, ErrRejected) {
		t.Fatalf("%v", ge)
	}
	// A 2xx answer that merely mentions "error" is not an error.
	if c.graphError(200, []byte(`{"message_id":"error"}`)) != nil {
		t.Fatal("false error")
	}
	if ge := c.graphError(502, []byte(`<html>bad gateway</html>`)); !errors.Is(ge, ErrUnavailable) {
		t.Fatalf("non-JSON 502: %v", ge)
	}
}

func TestTransportErrorKeepsContextErrors(t *testing.T) {
	t.Parallel()
	err := newTransportError(http.MethodGet, "https://x/me?access_token="+tokenA, &url.Error{Op: "Get", URL: "https://x/me?access_token=" + tokenA, Err: context.DeadlineExceeded})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), tokenA) {
		t.Fatalf("%v", err)
	}
}
