package main

import (
	"strings"
	"testing"
	"time"
)

func TestDeepLinkTTLConfig(t *testing.T) {
	cfg, err := loadTestConfig("", env(nil))
	if err != nil || cfg.Pairing.DeepLinkTTL != 15*time.Minute {
		t.Fatalf("default deep_link_ttl %v %v", cfg.Pairing.DeepLinkTTL, err)
	}
	cfg, err = loadTestConfig("", env(map[string]string{"PAIRINGD_PAIRING_DEEP_LINK_TTL": "90s"}))
	if err != nil || cfg.Pairing.DeepLinkTTL != 90*time.Second {
		t.Fatalf("env override %v %v", cfg.Pairing.DeepLinkTTL, err)
	}
	for _, v := range []string{"0s", "-1m"} {
		_, err = loadTestConfig("", env(map[string]string{"PAIRINGD_PAIRING_DEEP_LINK_TTL": v}))
		if err == nil || !strings.Contains(err.Error(), "pairing.deep_link_ttl") {
			t.Fatalf("%s: %v", v, err)
		}
	}
}
