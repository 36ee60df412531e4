package api

import (
	"strconv"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing/pairingtest"
)

func TestIPLimiter(t *testing.T) {
	t.Parallel()
	clk := pairingtest.NewClock(t0)
	l := newIPLimiter(1, 2, clk.Now)
	for i := range 2 {
		if ok, _ := l.allow("192.0.2.1"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	if ok, wait := l.allow("192.0.2.1"); ok || wait != time.Second {
		t.Fatalf("third: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.allow("192.0.2.2"); !ok {
		t.Fatal("other IP refused")
	}
	// One host's IPv6 addresses share a /64 bucket.
	l.allow("2001:db8::1")
	l.allow("2001:db8::2")
	if ok, _ := l.allow("2001:db8::ffff"); ok {
		t.Fatal("same /64 not limited")
	}
	if ok, _ := l.allow("2001:db8:0:1::1"); !ok {
		t.Fatal("other /64 limited")
	}
	clk.Advance(time.Second)
	if ok, _ := l.allow("192.0.2.1"); !ok {
		t.Fatal("token not regained")
	}
	// Full buckets are swept; the table stays bounded.
	clk.Advance(time.Hour)
	l.allow("198.51.100.1")
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after sweep", n)
	}
	for i := range maxLimiterEntries + 10 {
		l.take("10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255))
	}
	if n := len(l.buckets); n > maxLimiterEntries {
		t.Fatalf("%d buckets", n)
	}
}
