package main

import (
	"github.com/pairingd/pairingd/pairing"
)

// notifyWorker builds the outbox worker that serve runs in the background.
func notifyWorker(cfg Config, svc *pairing.Service) (*pairing.NotificationWorker, error) {
	return svc.NewNotificationWorker(cfg.Jobs.NotificationWorkerConfig())
}
