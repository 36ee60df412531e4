package main

import (
	"strings"
	"testing"
	"time"
)

func TestInboundConfig(t *testing.T) {
	cfg, err := loadConfig("", env(nil))
	if err != nil || cfg.Inbound != (InboundConfig{MaxAge: time.Hour, Workers: 8, PollInterval: time.Second, Retention: 48 * time.Hour}) {
		t.Fatalf("defaults %+v %v", cfg.Inbound, err)
	}
	cfg, err = loadConfig("", env(map[string]string{"PAIRINGD_INBOUND_MAX_AGE": "30m", "PAIRINGD_INBOUND_WORKERS": "3",
		"PAIRINGD_INBOUND_POLL_INTERVAL": "250ms", "PAIRINGD_INBOUND_RETENTION": "72h"}))
	if err != nil || cfg.Inbound != (InboundConfig{MaxAge: 30 * time.Minute, Workers: 3, PollInterval: 250 * time.Millisecond, Retention: 72 * time.Hour}) {
		t.Fatalf("env overrides %+v %v", cfg.Inbound, err)
	}
	for key, v := range map[string]string{
		"max_age": "0s", "workers": "0", "poll_interval": "5ms", "retention": "24h",
	} {
		_, err = loadConfig("", env(map[string]string{"PAIRINGD_INBOUND_" + strings.ToUpper(key): v}))
		if err == nil || !strings.Contains(err.Error(), "inbound."+key) {
			t.Fatalf("%s=%s: %v", key, v, err)
		}
	}
}
