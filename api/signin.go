package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

// subjectLinkBody is POST /v1/links/oidc: link the person who just signed
// in through OpenID Connect (named by the ID token's sub) to the account
// the site created for them.
type subjectLinkBody struct {
	Sub     string `json:"sub"`
	UserID  string `json:"user_id"`
	Replace bool   `json:"replace"`
}

func (s *server) linkSubject(c echo.Context) error {
	if s.subjects == nil {
		return errNoSignIn
	}
	var in subjectLinkBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	res, err := s.subjects.LinkSubject(c.Request().Context(), pairing.SubjectLinkRequest{
		Subject: in.Sub, UserID: in.UserID, Replace: in.Replace, KeyID: keyID(c),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resultOf(res))
}
