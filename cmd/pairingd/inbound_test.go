package main

import (
	"strings"
	"testing"
	"time"
)

func TestInboundConfig(t *testing.T) {
	cfg, err := loadTestConfig("", env(nil))
	if w := cfg.Jobs.InboundWorkerConfig(nil); err != nil || w.MaxAge != time.Hour || w.Workers != 8 || w.PollInterval != time.Second {
		t.Fatalf("defaults %+v %v", w, err)
	}
	cfg, err = loadTestConfig("", env(map[string]string{"PAIRINGD_JOBS_WORKERS": "3", "PAIRINGD_JOBS_POLL_INTERVAL": "250ms"}))
	if w := cfg.Jobs.InboundWorkerConfig(nil); err != nil || w.MaxAge != time.Hour || w.Workers != 3 || w.PollInterval != 250*time.Millisecond {
		t.Fatalf("env overrides %+v %v", w, err)
	}
	for key, v := range map[string]string{
		"max_age": "0s", "workers": "0", "poll_interval": "5ms",
	} {
		_, err = loadTestConfig("", env(map[string]string{envName("jobs." + key): v}))
		if err == nil || !strings.Contains(err.Error(), "jobs."+key) {
			t.Fatalf("%s=%s: %v", key, v, err)
		}
	}
}

// TestOnePollIntervalAndBackoff: the queues share jobs.poll_interval and
// jobs.workers, site events and notifications one retry policy's bounds;
// the notification lease is derived from its send timeout.
func TestOnePollIntervalAndBackoff(t *testing.T) {
	cfg, err := loadTestConfig("", env(map[string]string{"PAIRINGD_JOBS_POLL_INTERVAL": "100ms",
		"PAIRINGD_JOBS_BACKOFF_MIN": "1s", "PAIRINGD_JOBS_BACKOFF_MAX": "2s", "PAIRINGD_JOBS_SEND_TIMEOUT": "1s"}))
	if err != nil {
		t.Fatal(err)
	}
	in, site, notify := cfg.Jobs.InboundWorkerConfig(nil), cfg.Jobs.SiteEventWorkerConfig(nil), cfg.Jobs.NotificationWorkerConfig()
	if in.PollInterval != 100*time.Millisecond || site.PollInterval != in.PollInterval || notify.PollInterval != in.PollInterval {
		t.Fatalf("poll %v %v %v", in.PollInterval, site.PollInterval, notify.PollInterval)
	}
	if site.Policy.Initial != time.Second || site.Policy.Max != 2*time.Second || notify.BackoffMin != time.Second || notify.BackoffMax != 2*time.Second {
		t.Fatalf("backoff %+v %+v", site.Policy, notify)
	}
	if notify.Lease != 6*time.Second || notify.Parallel != 8 {
		t.Fatalf("lease %v parallel %d", notify.Lease, notify.Parallel)
	}
	if def := defaultConfig().Jobs.NotificationWorkerConfig(); def.Lease != time.Minute || def.SendTimeout != 10*time.Second {
		t.Fatalf("default lease %v", def.Lease)
	}
}
