// Command baseline is the yardstick for the load test: a minimal Echo +
// GORM server, on SQLite with the same settings as pairingd (WAL, one
// writer connection, prepared statements, WAL checkpoints every 500
// pages), or on PostgreSQL (-driver postgres -dsn URL) with a pool of
// -conns connections, as pairingd's database.max_open_conns. Its POST /v1/authorize does one indexed read and one
// conditional update; its GET /v1/links/{user_id} does one indexed read
// by a unique text column. The load script runs it with the same requests
// files so the ratio between pairingd and this floor is measured in one
// run.
//
//	go run ./api/bench/baseline -db /tmp/load/baseline.db -listen 127.0.0.1:18081 -rows 100000
//	go run ./api/bench/baseline -driver postgres -db 'postgres://...' -listen 127.0.0.1:18081
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

type row struct {
	ID     int64  `gorm:"primaryKey"`
	BUID   string `gorm:"column:buid;uniqueIndex"`
	PIN    string `gorm:"column:pin"`
	UsedAt int64  `gorm:"column:used_at"`
}

func main() {
	dbPath := flag.String("db", "baseline.db", "SQLite file, or PostgreSQL DSN with -driver postgres")
	driver := flag.String("driver", "sqlite", "sqlite or postgres")
	conns := flag.Int("conns", 10, "PostgreSQL pool size")
	listen := flag.String("listen", "127.0.0.1:18081", "address")
	rows := flag.Int("rows", 100000, "rows to create when the table is empty")
	offset := flag.Int64("offset", 0, "first row to use (a second instance on the same table starts elsewhere)")
	flag.Parse()

	gcfg := &gorm.Config{Logger: logger.Discard, PrepareStmt: true, SkipDefaultTransaction: true}
	var w, r *gorm.DB
	switch *driver {
	case "sqlite":
		open := func(extra string) *gorm.DB {
			dsn := "file:" + *dbPath + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL&_txlock=immediate" + extra
			db, err := gorm.Open(sqlite.Open(dsn), gcfg)
			if err != nil {
				log.Fatal(err)
			}
			return db
		}
		w, r = open(""), open("&_query_only=1")
		wdb, _ := w.DB()
		wdb.SetMaxOpenConns(1)
		wdb.SetMaxIdleConns(1)
		// As pairingd's writer (store.walAutoCheckpoint).
		if err := w.Exec("PRAGMA wal_autocheckpoint = 500").Error; err != nil {
			log.Fatal(err)
		}
	case "postgres":
		db, err := gorm.Open(postgres.Open(*dbPath), gcfg)
		if err != nil {
			log.Fatal(err)
		}
		pool, _ := db.DB()
		pool.SetMaxOpenConns(*conns)
		pool.SetMaxIdleConns(*conns)
		w, r = db, db
	default:
		log.Fatalf("-driver: sqlite or postgres, got %q", *driver)
	}
	if err := w.AutoMigrate(&row{}); err != nil {
		log.Fatal(err)
	}
	var n int64
	w.Model(&row{}).Count(&n)
	if n == 0 {
		batch := make([]row, 0, 1000)
		for i := range *rows {
			batch = append(batch, row{BUID: fmt.Sprintf("b%d", i), PIN: "123456"})
			if len(batch) == cap(batch) || i == *rows-1 {
				if err := w.Create(&batch).Error; err != nil {
					log.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	var next atomic.Int64
	next.Store(*offset)
	e.POST("/v1/authorize", func(c echo.Context) error {
		var req struct {
			BUID string `json:"buid"`
			PIN  string `json:"pin"`
		}
		if err := c.Bind(&req); err != nil || !strings.HasPrefix(c.Request().Header.Get("Authorization"), "Bearer ") {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "bad request"})
		}
		// The prepared requests carry pairingd BUIDs; map each to a row.
		var got row
		if err := r.WithContext(c.Request().Context()).Where("id = ?", next.Add(1)%int64(*rows)+1).Take(&got).Error; err != nil {
			return c.JSON(http.StatusNotFound, map[string]string{"error": "unknown"})
		}
		res := w.WithContext(c.Request().Context()).Exec(`UPDATE rows SET used_at = used_at + 1 WHERE id = ? AND pin = ?`, got.ID, got.PIN)
		if res.Error != nil || res.RowsAffected != 1 {
			return c.JSON(http.StatusConflict, map[string]string{"error": "not spent"})
		}
		return c.JSON(http.StatusOK, map[string]any{"outcome": "match", "user_id": got.BUID})
	})
	e.GET("/v1/links/:user_id", func(c echo.Context) error {
		if !strings.HasPrefix(c.Request().Header.Get("Authorization"), "Bearer ") {
			return c.JSON(http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		}
		// The prepared requests carry pairingd user ids; map each to a row
		// read through the unique text index, as pairingd reads by user id.
		var got row
		buid := fmt.Sprintf("b%d", next.Add(1)%int64(*rows))
		if err := r.WithContext(c.Request().Context()).Where("buid = ?", buid).Take(&got).Error; err != nil {
			return c.JSON(http.StatusNotFound, map[string]string{"error": "unknown"})
		}
		return c.JSON(http.StatusOK, map[string]any{"user_id": c.Param("user_id"), "person_id": got.ID, "linked_at": got.UsedAt})
	})
	log.Printf("baseline listening on %s", *listen)
	log.Fatal(e.Start(*listen))
}
