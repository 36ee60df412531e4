package pairing

import (
	"context"
	"errors"
	"time"
)

// Bot-first sign-in: the person starts in the chat (/login), and the link
// the bot sends leads to pairingd's hosted PIN page instead of the site's.
// The right PIN (spent exactly as POST /v1/authorize spends it) or
// Telegram's signed login data (one tap, no PIN) signs the person in to
// pairingd; the page then sends the browser to the site, which signs in
// through OpenID Connect from that session. This file decides who signed
// in and how; the pages and the session are the provider's.

// AMR values of the bot-first sign-ins (the amr claim; the channel's type
// follows each).
const (
	// AMROneTimePIN: the PIN the bot sent to the chat was typed on the
	// hosted page (RFC 8176 "otp").
	AMROneTimePIN = "otp"
	// AMRTelegramLogin: Telegram vouched for the user with its signed
	// login_url data.
	AMRTelegramLogin = "telegram_login"
)

// ChatSignIn is a person signed in from the chat: who, how, and the chat
// that proved it.
type ChatSignIn struct {
	Auth SignInAuth
	Lead Lead
}

// PINPageLead is the chat a BUID was issued to, for the hosted PIN page
// (which site it leads to, the page's language). A BUID that is not the
// row's current one is ErrBUIDUnknown.
func (si *SignIns) PINPageLead(ctx context.Context, buid string) (Lead, error) {
	wu, _, err := si.svc.lookupBUID(ctx, buid)
	if err != nil {
		return Lead{}, err
	}
	return si.svc.store.LeadByID(ctx, wu.LeadID)
}

// SignInWithPIN spends the PIN of a BUID under the rules of authorize
// (single spend, the wrong-PIN count and lock; no API key, so the page's
// per-IP limits stand in for the key's budget) and signs the person in.
// Refusals are authorize's: ErrBUIDUnknown, *AttemptsError, ErrPINExpired,
// ErrPINUsed, *FieldError.
func (si *SignIns) SignInWithPIN(ctx context.Context, buid, pin string) (ChatSignIn, error) {
	if pin == "" {
		return ChatSignIn{}, invalid("pin", "is required")
	}
	res, err := si.svc.Authorize(ctx, AuthorizeRequest{BUID: buid, PIN: pin, signIn: true})
	if err != nil {
		return ChatSignIn{}, err
	}
	return si.chatSignIn(ctx, res.Lead, res.PersonID, AMROneTimePIN)
}

// ChatProof is a platform's signed login as the domain keeps it: a digest
// of its signature and until when the signed data could be accepted.
type ChatProof struct {
	Hash  []byte
	Until time.Time
}

// SignInChat signs in the person behind a chat the platform vouched for
// (Telegram's login_url data, checked by the adapter). Each proof signs in
// once (ErrTokenUsed after). A chat that never wrote to the bot is
// ErrNotFound.
func (si *SignIns) SignInChat(ctx context.Context, key LeadKey, method string, proof ChatProof) (ChatSignIn, error) {
	if err := validateLeadKey(key); err != nil {
		return ChatSignIn{}, err
	}
	if len(proof.Hash) == 0 {
		return ChatSignIn{}, invalid("proof", "is required")
	}
	lead, err := si.svc.store.LeadByKey(ctx, key)
	if err != nil {
		return ChatSignIn{}, err
	}
	fresh, err := si.store.UseLoginProof(ctx, proof.Hash, proof.Until)
	if err != nil {
		return ChatSignIn{}, err
	}
	if !fresh {
		return ChatSignIn{}, ErrTokenUsed
	}
	if lead.Blocked {
		return ChatSignIn{}, &ChannelError{Err: ErrChannelUnavailable, Channel: key.Channel, Cause: errors.New("the person blocked the bot")}
	}
	out, err := si.chatSignIn(ctx, lead, lead.PersonID, method)
	if err != nil {
		return ChatSignIn{}, err
	}
	si.svc.audit(ctx, si.svc.store, AuditEvent{Action: "chat_signin", Outcome: method, PersonID: lead.PersonID, Detail: key.Channel})
	return out, nil
}

func (si *SignIns) chatSignIn(ctx context.Context, lead Lead, personID int64, method string) (ChatSignIn, error) {
	auth, err := si.auth(ctx, personID, lead.Channel, method, si.svc.now())
	if err != nil {
		return ChatSignIn{}, err
	}
	return ChatSignIn{Auth: auth, Lead: lead}, nil
}

// ResendPIN has the chat behind a BUID send a fresh PIN (the page's "send
// me a new PIN" button), under the limits of POST /v1/pins/resend. The new
// BUID comes back so the page the person is on keeps working.
func (si *SignIns) ResendPIN(ctx context.Context, buid string) (IssuedPIN, error) {
	return si.svc.ResendPIN(ctx, buid)
}
