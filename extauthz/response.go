package extauthz

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/keygate/keygate/policy"
)

// allowParts is the part of an allow response that depends only on the key's
// record; it is built once per cache fill and shared (read-only) by every
// response for that key.
type allowParts struct {
	headers  []*corev3.HeaderValueOption
	set      []string // lower-case names in headers
	metadata *structpb.Struct
}

// buildAllow prepares the identity headers, the record's own headers and the
// dynamic metadata for keyID. A record header that would clash with the
// credential headers makes the record unusable.
func (s *Server) buildAllow(keyID string, rec *policy.Record) (*allowParts, error) {
	p := &allowParts{}
	add := func(name, value string) {
		p.headers = append(p.headers, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: name, Value: value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
		p.set = append(p.set, name)
	}
	add(headerKeyID, keyID)
	add(headerTenant, rec.Tenant)
	if len(rec.Scopes) > 0 {
		add(headerScopes, strings.Join(rec.Scopes, " "))
	}
	names := make([]string, 0, len(rec.Headers))
	for name := range rec.Headers {
		if name == s.cfg.KeyHeader || name == s.cfg.AuthHeader {
			return nil, fmt.Errorf("%w: header %q is a credential header", policy.ErrInvalidRecord, name)
		}
		names = append(names, name)
	}
	slices.Sort(names) // stable responses
	for _, name := range names {
		add(name, rec.Headers[name])
	}
	scopes := make([]any, len(rec.Scopes))
	for i, sc := range rec.Scopes {
		scopes[i] = sc
	}
	md, err := structpb.NewStruct(map[string]any{"key_id": keyID, "tenant": rec.Tenant, "scopes": scopes})
	if err != nil {
		return nil, fmt.Errorf("dynamic metadata: %w", err)
	}
	p.metadata = md
	return p, nil
}

var okStatus = &rpcstatus.Status{Code: int32(codes.OK)}

// allow builds the OK response: the prebuilt headers, plus removal of the
// credential headers and of client-sent x-keygate-* headers this response
// does not set (Envoy removes after setting, so nothing set is removed).
func (s *Server) allow(p *allowParts, in *incoming) *authv3.CheckResponse {
	remove := s.credHeaders[in.from]
	for _, name := range in.spoofed {
		if !slices.Contains(p.set, name) && !slices.Contains(remove, name) {
			remove = append(slices.Clip(remove), name)
		}
	}
	return &authv3.CheckResponse{
		Status: okStatus,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:         p.headers,
			HeadersToRemove: remove,
		}},
		DynamicMetadata: p.metadata,
	}
}

// credentialRemovals precomputes headers_to_remove for each combination of
// credential headers that carried the key.
func credentialRemovals(cfg *Config) [4][]string {
	var r [4][]string
	for bits := range uint8(4) {
		if bits&fromKeyHeader != 0 {
			r[bits] = append(r[bits], cfg.KeyHeader)
		}
		if bits&fromAuthHeader != 0 {
			r[bits] = append(r[bits], cfg.AuthHeader)
		}
	}
	return r
}

// denyResponses prebuilds one immutable deny per reason: the JSON body
// carries the stable reason code; 401s carry WWW-Authenticate.
func denyResponses() [policy.NumReasons]*authv3.CheckResponse {
	var out [policy.NumReasons]*authv3.CheckResponse
	for r := range policy.NumReasons {
		reason := policy.Reason(r)
		status := reason.HTTPStatus()
		if reason == policy.Allowed {
			continue
		}
		code := codes.PermissionDenied
		headers := []*corev3.HeaderValueOption{overwrite("content-type", "application/json")}
		if status == http.StatusUnauthorized {
			code = codes.Unauthenticated
			challenge := `Bearer realm="keygate"`
			if reason != policy.MissingKey {
				challenge += fmt.Sprintf(`, error="invalid_token", error_description=%q`, reason.String())
			}
			headers = append(headers, overwrite("www-authenticate", challenge))
		}
		body := fmt.Sprintf(`{"error":%q,"reason":%q}`+"\n",
			strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_")), reason.String())
		out[r] = &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(code), Message: reason.String()},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
				Headers: headers,
				Body:    body,
			}},
		}
	}
	return out
}

func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
