package server

import (
	"context"

	"github.com/coffer-kms/coffer/kms"
	"github.com/valyala/fasthttp"
)

// viaServiceHeader is how a platform's service says it calls Coffer on a
// principal's behalf (kms.Service.ActAs): its value is kms:ViaService.
const viaServiceHeader = "X-Coffer-Via-Service"

// actAs applies the request's X-Coffer-Via-Service to c. The header must be
// one the signature covers, so that no one between the service and Coffer
// can add it; kms decides whether c may act for the service.
func (s *Server) actAs(ctx *fasthttp.RequestCtx, octx context.Context, sr *sigRequest, c *kms.Caller, svc *kms.Service) error {
	v := ctx.Request.Header.Peek(viaServiceHeader)
	if len(v) == 0 {
		return nil
	}
	if !signsHeader(sr.signedHeaders, "x-coffer-via-service") {
		return &authError{"IncompleteSignatureException", "The header X-Coffer-Via-Service must be signed: name it in SignedHeaders."}
	}
	return svc.ActAs(octx, c, string(v))
}
