package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// registerMetrics is the whole of the metrics listener
// (server.metrics_listen): /metrics without the per-address limit, since
// only the operator's scrapers reach that address.
func (s *server) registerMetrics(e *echo.Echo) {
	e.Use(s.requestLog, s.recoverPanic, secureHeaders)
	e.GET("/metrics", s.metricsText)
}

// register lists every route of the service. /v1 routes run, in order:
// query-string key refusal, API key auth (with the per-IP 401 limit), body
// checks (media type, size, strict JSON), OpenAPI validation, the handler.
func (s *server) register(e *echo.Echo, hooks []Webhook) {
	e.Use(s.requestLog, s.recoverPanic, secureHeaders)

	e.GET("/healthz", s.healthz)
	// Unauthenticated and costlier than a liveness check: limited per
	// client address like the webhooks.
	public := limitIP(s.public)
	e.GET("/readyz", s.readyz, public)
	if s.cfg.MetricsListen == "" {
		e.GET("/metrics", s.metricsText, public)
	}
	e.GET("/openapi.yaml", s.openAPI)

	// Middleware is attached per route, not to an Echo group: a group with
	// middleware answers 404 for wrong methods instead of 405.
	auth := []echo.MiddlewareFunc{s.refuseQueryKeys, s.requireKey, s.validate}
	body := []echo.MiddlewareFunc{s.refuseQueryKeys, s.requireKey, s.readBody, s.validate}
	e.POST("/v1/authorize", s.authorize, body...)
	e.POST("/v1/links", s.completeLink, body...)
	e.GET("/v1/links/:user_id", s.getLink, auth...)
	e.DELETE("/v1/links/:user_id", s.deleteLink, auth...)
	e.POST("/v1/pins/resend", s.resendPIN, body...)
	e.POST("/v1/messenger/account-linking", s.accountLinking, body...)
	e.POST("/v1/links/facebook", s.linkFacebook, body...)
	e.POST("/v1/links/oidc", s.linkSubject, body...)
	e.POST("/v1/deep-links", s.createDeepLink, body...)
	e.GET("/v1/deep-links/:token/qr.png", s.deepLinkQR, auth...)
	e.GET("/v1/events", s.listEvents, auth...)
	e.POST("/v1/users/:user_id/messages", s.notify, body...)
	e.GET("/v1/messages/:id", s.getMessage, auth...)

	for _, w := range hooks {
		h := echo.WrapHandler(http.MaxBytesHandler(w.Handler, s.cfg.webhookBodyLimitOf()))
		switch {
		case w.Unlimited:
			e.Add(w.Method, w.Path, h)
		case w.Page:
			e.Add(w.Method, w.Path, h, limitIP(s.pages))
		default:
			e.Add(w.Method, w.Path, h, public, s.uploads.middleware)
		}
	}
}
