// Command seed prepares a pairingd database (SQLite, or PostgreSQL with
// -driver postgres -dsn URL) for the load test: an API key, n fresh PINs (linked persons for the match path, new ones for
// register) and optionally extra filler rows, and writes the requests as a
// Lua table for wrk.
//
//	go run ./api/bench/seed -db /tmp/load/pairingd.db -n 60000 -path match -out /tmp/load/requests.lua
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

func main() {
	db := flag.String("db", "pairingd.db", "SQLite file, or PostgreSQL DSN with -driver postgres (migrated if new)")
	driver := flag.String("driver", store.SQLite, "sqlite or postgres")
	n := flag.Int("n", 10000, "requests (PINs) to prepare")
	path := flag.String("path", "match", "match or register")
	filler := flag.Int("filler", 0, "extra persons with an issued PIN, to grow the tables")
	out := flag.String("out", "requests.lua", "Lua file for wrk")
	secretFlag := flag.String("secret", "", "the server's pairing.secret (at least 32 bytes); empty: the one stored in the database")
	flag.Parse()

	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: *driver, DSN: *db, MaxOpenConns: 32}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	secret := []byte(*secretFlag)
	if len(secret) == 0 {
		// The secret pairingd serve will use: the file beside the database.
		secret, err = st.ServerSecret(ctx, nil, "", store.Config{Driver: *driver, DSN: *db})
		if err != nil {
			log.Fatal(err)
		}
	}
	svc, err := pairing.New(st, pairing.Config{Secret: secret, PINTTL: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	_, key, err := svc.CreateAPIKey(ctx, "load-"+strconv.FormatInt(time.Now().Unix(), 10))
	if err != nil {
		log.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)

	// Many goroutines: SQLite serializes the writes, but their
	// transactions share commits (group commit) and the HMACs overlap.
	parallel := func(count int, fn func(i int) error) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := fn(i); err != nil {
						log.Fatal(err)
					}
				}
			}()
		}
		for i := range count {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	start := time.Now()
	parallel(*filler, func(i int) error {
		_, err := svc.IssuePIN(ctx, pairing.LeadKey{Channel: "filler", ExternalID: run + "-" + strconv.Itoa(i)}, pairing.Profile{FirstName: "F"}, pairing.IssueOptions{Force: true})
		return err
	})
	bodies := make([]string, *n)
	parallel(*n, func(i int) error {
		lk := pairing.LeadKey{Channel: "telegram", ExternalID: run + "-" + strconv.Itoa(i)}
		p, err := svc.IssuePIN(ctx, lk, pairing.Profile{FirstName: "Ann"}, pairing.IssueOptions{Force: true})
		if err != nil {
			return err
		}
		if *path == "match" {
			if _, err := svc.Authorize(ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, UserID: "load-" + run + "-" + strconv.Itoa(i)}); err != nil {
				return err
			}
			if p, err = svc.IssuePIN(ctx, lk, pairing.Profile{FirstName: "Ann"}, pairing.IssueOptions{Force: true}); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(map[string]string{"buid": p.BUID, "pin": p.PIN})
		bodies[i] = string(b)
		return nil
	})

	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(f, "key = %q\nbodies = {\n", key)
	for _, b := range bodies {
		fmt.Fprintf(f, "%q,\n", b)
	}
	fmt.Fprintln(f, "}")
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	log.Printf("seeded %d %s requests and %d filler rows in %s", *n, *path, *filler, time.Since(start).Round(time.Millisecond))
}
