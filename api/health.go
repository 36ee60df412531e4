package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// checkTimeout bounds each readiness check, so /readyz answers even when
// a dependency hangs.
const checkTimeout = 3 * time.Second

func (s *server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readyJSON struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyFor is how long one readiness answer is reused. The database check
// writes a heartbeat row (a database that answers but cannot write is not
// ready), so a flood of /readyz must not become a flood of writes: every
// caller within this time gets the answer of one check.
const readyFor = time.Second

// readyAnswer is the last readiness answer and when it was decided.
type readyAnswer struct {
	mu     sync.Mutex
	at     time.Time
	status int
	body   readyJSON
}

// readyz answers with the readiness decided at most readyFor ago; callers
// that come while a check runs wait for it instead of starting their own.
func (s *server) readyz(c echo.Context) error {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	now := s.clock.Now()
	if s.ready.at.IsZero() || now.Before(s.ready.at) || now.Sub(s.ready.at) >= readyFor {
		// The check outlives the caller that started it: its answer is
		// shared, so one caller hanging up must not make it "unavailable".
		s.ready.status, s.ready.body = s.checkReady(context.WithoutCancel(c.Request().Context()), s.requestLogger(c))
		s.ready.at = now
	}
	return c.JSON(s.ready.status, s.ready.body)
}

// checkReady runs the database check (Service.Ready, unless Deps.Checks
// names its own "database") and the configured ones concurrently. A
// failure shows as a fixed word ("unavailable", "timeout"); its text, which
// may hold a DSN or host name, goes to the log.
func (s *server) checkReady(parent context.Context, log *slog.Logger) (int, readyJSON) {
	checks := s.checks
	if !slices.ContainsFunc(checks, func(ch Check) bool { return ch.Name == "database" }) {
		checks = append([]Check{{Name: "database", Check: s.svc.Ready}}, checks...)
	}
	out := readyJSON{Status: "ready", Checks: make(map[string]string, len(checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ch := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(parent, checkTimeout)
			defer cancel()
			res := "ok"
			if err := runCheck(ctx, ch.Check); err != nil {
				res = "unavailable"
				if errors.Is(err, context.DeadlineExceeded) {
					res = "timeout"
				}
				log.Warn("readiness check failed", "check", ch.Name, "err", err)
			}
			mu.Lock()
			out.Checks[ch.Name] = res
			if res != "ok" && !ch.Optional {
				out.Status = "unavailable"
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if out.Status != "ready" {
		return http.StatusServiceUnavailable, out
	}
	return http.StatusOK, out
}

// runCheck returns when the check does or when ctx ends, whichever is
// first, so a check that ignores its context cannot hang /readyz.
func runCheck(ctx context.Context, check func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- errors.New("check panicked")
			}
		}()
		done <- check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// metricsText serves the process's series and the queue gauges, read
// from the database for this scrape.
func (s *server) metricsText(c echo.Context) error {
	g := prometheus.Gatherers{s.metrics.reg}
	if s.queues != nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(queueCollector{ctx: c.Request().Context(), queues: s.queues, now: s.clock.Now(), log: s.requestLogger(c)})
		g = append(g, reg)
	}
	promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(c.Response(), c.Request())
	return nil
}

func (s *server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openAPIYAML)
}
