package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// inboundWorker builds the process's inbound worker over the store. The
// tokens in stored payloads are sealed with a key derived from the server
// secret, so other instances and the next start can open them.
func inboundWorker(cfg Config, st *store.Store, log *slog.Logger, serverSecret []byte) *pairing.InboundWorker {
	c := cfg.Jobs.InboundWorkerConfig(log.With("component", "inbound"))
	c.SealKey = pairing.InboundSealKey(serverSecret)
	return pairing.NewInboundWorker(st, c)
}

// inboundPruneLoop drops handled and given-up inbound events older than
// pairing.InboundRetention, hourly.
func inboundPruneLoop(st *store.Store, log *slog.Logger) func(context.Context) error {
	return every(time.Hour, func(ctx context.Context) {
		n, err := st.PruneInbound(ctx, time.Now().Add(-pairing.InboundRetention))
		logPrune(ctx, log, slog.LevelDebug, "inbound events", n, err)
	})
}
