package api

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

// The /v1 handlers: decode, validate, one service call, respond. The
// request already passed auth, the body checks and openapi.yaml.

func (s *server) authorize(c echo.Context) error {
	var in authorizeBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	res, err := s.svc.Authorize(c.Request().Context(), pairing.AuthorizeRequest{
		BUID: in.BUID, PIN: in.PIN, UserID: in.UserID, KeyID: keyID(c),
	})
	s.metrics.authorizeOutcome(res, err)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resultOf(res))
}

func (s *server) completeLink(c echo.Context) error {
	var in linkBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	res, err := s.svc.CompleteLink(c.Request().Context(), pairing.LinkRequest{
		Grant: in.Grant, UserID: in.UserID, Replace: in.Replace, KeyID: keyID(c),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resultOf(res))
}

func (s *server) getLink(c echo.Context) error {
	userID, err := userIDParam(c)
	if err != nil {
		return err
	}
	link, err := s.svc.GetLink(c.Request().Context(), userID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, linkOf(link))
}

func (s *server) deleteLink(c echo.Context) error {
	userID, err := userIDParam(c)
	if err != nil {
		return err
	}
	removed, err := s.svc.UnlinkUser(c.Request().Context(), userID, pairing.ActorSite)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, unlinkJSON{Unlinked: removed})
}

func (s *server) resendPIN(c echo.Context) error {
	var in resendBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	pin, err := s.svc.ResendPIN(c.Request().Context(), in.BUID)
	if err != nil {
		return err
	}
	// Neither the new BUID nor the PIN is returned: they went to the chat.
	return c.JSON(http.StatusAccepted, resendJSON{Channel: pin.Lead.Channel, ExpiresAt: timeJSON(pin.ExpiresAt)})
}

func (s *server) accountLinking(c echo.Context) error {
	if s.messenger == nil {
		return errNoMessenger
	}
	var in accountLinkingBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	if err := pairing.ValidateUserID("user_id", in.UserID); err != nil {
		return err
	}
	redirect, err := s.messenger.AccountLinking(c.Request().Context(), in.AccountLinkingToken, in.RedirectURI, in.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, redirectJSON{RedirectURI: redirect})
}

func (s *server) linkFacebook(c echo.Context) error {
	if s.messenger == nil {
		return errNoMessenger
	}
	var in facebookBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	if err := pairing.ValidateUserID("user_id", in.UserID); err != nil {
		return err
	}
	res, err := s.messenger.LinkFacebook(c.Request().Context(), in.UserID, in.AppScopedID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resultOf(res))
}

// userIDParam is the path's user id, unescaped once: Echo hands the
// parameter over still escaped when the path needed escaping (RawPath), so
// "a%2Fb" names the user "a/b".
func userIDParam(c echo.Context) (string, error) {
	id, err := pathParam(c, "user_id")
	if err != nil {
		return "", err
	}
	if err := pairing.ValidateUserID("user_id", id); err != nil {
		return "", err
	}
	return id, nil
}

func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", fieldsError(map[string]string{name: "is not a valid path-escaped string"})
	}
	return u, nil
}
