package pairingtest

import (
	"context"

	"github.com/pairingd/pairingd/pairing"
)

// Channel is a pairing.Channel for tests, put together from the parts a
// test needs. A missing part answers pairing.ErrUnsupported; without
// Notifications the channel reports zero limits, so it carries no
// notifications.
type Channel struct {
	ChannelName string
	PINs        interface {
		SendPIN(context.Context, pairing.IssuedPIN) error
	}
	Notifications interface {
		Deliver(context.Context, pairing.OutboundMessage) error
	}
	Links interface {
		DeepLinkURL(token string) (string, error)
	}
	NotifyLimits pairing.ChannelLimits
	NotifyPace   pairing.Pace
}

var _ pairing.Channel = Channel{}

// Name implements pairing.Channel.
func (c Channel) Name() string { return c.ChannelName }

// SendPIN implements pairing.Channel.
func (c Channel) SendPIN(ctx context.Context, pin pairing.IssuedPIN) error {
	if c.PINs == nil {
		return pairing.ErrUnsupported
	}
	return c.PINs.SendPIN(ctx, pin)
}

// Deliver implements pairing.Channel.
func (c Channel) Deliver(ctx context.Context, m pairing.OutboundMessage) error {
	if c.Notifications == nil {
		return &pairing.DeliveryError{Permanent: true, Reason: pairing.ReasonRejected, Detail: pairing.ErrUnsupported.Error()}
	}
	return c.Notifications.Deliver(ctx, m)
}

// Limits implements pairing.Channel.
func (c Channel) Limits() pairing.ChannelLimits {
	if c.Notifications == nil {
		return pairing.ChannelLimits{}
	}
	return c.NotifyLimits
}

// Pace implements pairing.Channel.
func (c Channel) Pace() pairing.Pace { return c.NotifyPace }

// DeepLinkURL implements pairing.Channel.
func (c Channel) DeepLinkURL(token string) (string, error) {
	if c.Links == nil {
		return "", pairing.ErrUnsupported
	}
	return c.Links.DeepLinkURL(token)
}

// Health implements pairing.Channel.
func (c Channel) Health() error { return nil }
