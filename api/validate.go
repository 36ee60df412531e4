package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"
)

//go:embed openapi.yaml
var openAPIYAML []byte

// spec is the loaded openapi.yaml, with its operations indexed by Echo's
// route pattern ("/v1/links/:user_id").
type spec struct {
	doc    *openapi3.T
	routes map[string]*routers.Route // "METHOD /echo/pattern"
}

func loadSpec() (*spec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("api: openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api: openapi.yaml: %w", err)
	}
	sp := &spec{doc: doc, routes: map[string]*routers.Route{}}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			sp.routes[method+" "+echoPattern(path)] = &routers.Route{
				Spec: doc, Path: path, PathItem: item, Method: method, Operation: op,
			}
		}
	}
	return sp, nil
}

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

// echoPattern turns "/v1/links/{user_id}" into "/v1/links/:user_id".
func echoPattern(path string) string { return templateParam.ReplaceAllString(path, ":$1") }

var validateOptions = &openapi3filter.Options{
	// The key was checked by requireKey before the body was read.
	AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
	SkipSettingDefaults: true,
	MultiError:          true,
}

// validate checks the request against its operation in openapi.yaml:
// path parameters, and the body kept by readBody. Every route it guards is
// in the spec (TestEveryRouteInSpec), so a missing operation is a bug.
func (s *server) validate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route := s.spec.routes[c.Request().Method+" "+c.Path()]
		if route == nil {
			return fmt.Errorf("api: route %s %s is not in openapi.yaml", c.Request().Method, c.Path())
		}
		params := map[string]string{}
		for _, name := range c.ParamNames() {
			v, err := pathParam(c, name)
			if err != nil {
				return err
			}
			params[name] = v
		}
		in := &openapi3filter.RequestValidationInput{
			Request: c.Request(), PathParams: params, Route: route, Options: validateOptions,
		}
		if err := openapi3filter.ValidateRequest(c.Request().Context(), in); err != nil {
			return validationError(err)
		}
		return next(c)
	}
}

// validationError names the offending fields with the validator's reasons,
// which never quote the value.
func validationError(err error) error {
	fields := map[string]string{}
	collectFields(err, "", fields)
	if len(fields) == 0 {
		return invalidRequest("The request does not match the API description (/openapi.yaml).")
	}
	return fieldsError(fields)
}

var propertyReason = regexp.MustCompile(`^property "(.*)" is (missing|unsupported)$`)

func collectFields(err error, param string, fields map[string]string) {
	switch e := err.(type) {
	case openapi3.MultiError:
		for _, one := range e {
			collectFields(one, param, fields)
		}
	case *openapi3filter.RequestError:
		if e.Parameter != nil {
			param = e.Parameter.Name
		}
		switch {
		case e.Err == nil:
			fields[fieldName(param, nil)] = "is invalid"
		case errors.Is(e.Err, openapi3filter.ErrInvalidRequired):
			fields[fieldName(param, nil)] = "is required"
		default:
			collectFields(e.Err, param, fields)
		}
	case *openapi3.SchemaError:
		path, reason := e.JSONPointer(), schemaReason(e)
		if m := propertyReason.FindStringSubmatch(reason); m != nil {
			if m[2] == "missing" {
				reason = "is required"
			} else {
				path, reason = append(path, safeFieldName(m[1])), "is not a known field"
			}
		}
		fields[fieldName(param, path)] = reason
	default:
		// A body that is not JSON at all was refused by readBody already.
		fields[fieldName(param, nil)] = "is invalid"
	}
}

// schemaReason is the first reason found in a schema error or the errors
// it wraps (allOf and friends leave the outer Reason empty).
func schemaReason(e *openapi3.SchemaError) string {
	if e.Reason != "" {
		return e.Reason
	}
	var inner *openapi3.SchemaError
	if errors.As(e.Origin, &inner) && inner != e {
		return schemaReason(inner)
	}
	return "does not match the schema"
}

// fieldName joins a parameter name and a JSON pointer into "a.b".
func fieldName(param string, path []string) string {
	parts := path
	if param != "" {
		parts = append([]string{param}, path...)
	}
	if len(parts) == 0 {
		return "body"
	}
	return strings.Join(parts, ".")
}
