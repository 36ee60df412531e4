package pairing

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func buidNumbers(rowID int64, secret []byte) []uint64 {
	return []uint64{uint64(rowID), binary.BigEndian.Uint64(secret[:8]), binary.BigEndian.Uint64(secret[8:])}
}

// The codec issues BUIDs without sqids' blocklist (a nil Blocklist would
// mean the default list, re-encoding ids that contain a listed word), and
// still accepts the form earlier versions issued.
func TestBUIDCodecBlocklist(t *testing.T) {
	t.Parallel()
	c, err := newBUIDCodec()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	secret := make([]byte, 16)
	for i := range 200000 {
		rowID := int64(rng.IntN(1_000_000) + 1)
		binary.BigEndian.PutUint64(secret[:8], rng.Uint64())
		binary.BigEndian.PutUint64(secret[8:], rng.Uint64())
		nums := buidNumbers(rowID, secret)
		now, err := c.encode(rowID, secret)
		if err != nil {
			t.Fatal(err)
		}
		old, err := c.legacy.Encode(nums)
		if err != nil {
			t.Fatal(err)
		}
		if now == old {
			continue
		}
		// A blocked word made the old codec re-encode; ours did not.
		for _, b := range []string{now, old} {
			id, sec, ok := c.decode(b)
			if !ok || id != rowID || !bytes.Equal(sec, secret) {
				t.Fatalf("decode(%q) = %d, %x, %v; want %d, %x", b, id, sec, ok, rowID, secret)
			}
		}
		t.Logf("found after %d tries: %q (was %q)", i+1, now, old)
		return
	}
	t.Fatal("no id among 200,000 differs between the codecs: is the blocklist still on?")
}

// A BUID is accepted only in the exact form it was issued.
func TestBUIDDecodeRejects(t *testing.T) {
	t.Parallel()
	c, err := newBUIDCodec()
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.encode(42, bytes.Repeat([]byte{7}, 16))
	if err != nil {
		t.Fatal(err)
	}
	if id, _, ok := c.decode(good); !ok || id != 42 {
		t.Fatalf("decode(%q) = %d, %v", good, id, ok)
	}
	for _, bad := range []string{"", good + "x", good[1:], " " + good, good + "\x00", "ａ" + good, good + good} {
		if _, _, ok := c.decode(bad); ok {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
}
