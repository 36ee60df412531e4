package channel

// Options are the keys every channel type has, besides its own: written
// inline in each channels[] item (`yaml:",inline"` in the adapter's
// config), read by the wiring through Shared.
type Options struct {
	// PINPageClient names the registered OpenID Connect client (the site)
	// that this channel's /login links sign in to through pairingd's
	// hosted PIN page ({public_url}/pair?buid=...) instead of
	// pairing.link_url. Empty: the site hosts its own PIN page.
	PINPageClient string `yaml:"pin_page_client"`
	// LinkNotices: tell the chat whenever it becomes linked to a site user,
	// with a one-tap unlink button.
	LinkNotices bool `yaml:"link_notices"`
}

// DefaultOptions are the shared keys' defaults: link notices on.
func DefaultOptions() Options { return Options{LinkNotices: true} }

// Shared returns the shared keys of an adapter's config that embeds
// Options.
func (o Options) Shared() Options { return o }
