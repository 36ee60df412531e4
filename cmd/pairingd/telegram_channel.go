package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// telegramChannel is replaced when the Telegram adapter lands.
func telegramChannel(cfg Config, ch ChannelConfig, svc *pairing.Service, st *store.Store, texts *templates.Catalog, log *slog.Logger, deps *api.Deps) (func(context.Context) error, error) {
	return nil, fmt.Errorf("channels[%s]: type telegram is not available in this build yet", ch.Name)
}
