package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

type checkFlags struct {
	addr, key, keyHeader string
	keyFile              string
	method, path, host   string
	sourceIP             string
	headers, context     []string
	timeout              time.Duration
	jsonOut              bool
	tlsCA                string // trust this CA and use TLS
	tlsCert, tlsKey      string // client certificate for mutual TLS
	markdown             bool   // --help-markdown
	fs                   *pflag.FlagSet
}

func newCheckCmd(e *env) *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Send one real CheckRequest to a keygate server and print the decision",
		Long: "Send one real CheckRequest, as Envoy would, and print the decision and headers.\n" +
			"Exit status: 0 allowed, 1 denied, 2 error. Give the key with --key-file, --key - (stdin)\n" +
			"or KEYGATE_KEY, so it stays out of argv (ps) and shell history. The key is never printed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), e) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false // --help and the README list flags in this order
	fs.StringVar(&f.addr, "addr", "127.0.0.1:9191", "keygate's gRPC address")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM CA of keygate's certificate: connect with TLS (plain text when empty)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key and --tls-ca)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&f.keyFile, "key-file", "", "file holding the key to send (one line; its newline is dropped)")
	fs.StringVar(&f.key, "key", "", `the key to send: "-" reads it from one line of stdin; "KEYGATE_KEY" passes it in the environment; `+
		`on the command line every local user can see it (ps); omit every key source to test "missing_key"`)
	fs.StringVar(&f.keyHeader, "key-header", "x-api-key", `header to send the key in; "authorization" sends "Bearer <key>"`)
	fs.StringVar(&f.method, "method", "GET", "the request's method")
	fs.StringVar(&f.path, "path", "/", "the request's path, with any query string, as Envoy sends it")
	fs.StringVar(&f.host, "host", "localhost", "the request's host (:authority)")
	fs.StringVar(&f.sourceIP, "source-ip", "127.0.0.1", `the peer address Envoy reports (for "allowed_cidrs")`)
	fs.StringArrayVar(&f.headers, "header", nil, `extra request header NAME=VALUE, repeatable (e.g. "origin=https://app.example.com")`)
	fs.StringArrayVar(&f.context, "context", nil, `context extension NAME=VALUE, repeatable (e.g. "keygate.scopes=orders:read")`)
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "RPC timeout")
	fs.BoolVar(&f.jsonOut, "json", false, "print the CheckResponse as JSON")
	fs.BoolVar(&f.markdown, "help-markdown", false, "print the flag table as Markdown, as in the README")
	_ = fs.MarkHidden("help-markdown")
	f.fs = fs
	return cmd
}

func (f *checkFlags) run(ctx context.Context, e *env) error {
	if f.markdown {
		return writeFlagDocs(e.stdout, f.fs, checkDocs)
	}
	req, err := f.request(e.stdin)
	if err := errors.Join(e.envErr, err); err != nil {
		return err
	}
	creds, err := f.credentials()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("--addr %q: %w", f.addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		return fmt.Errorf("check %s: %w", f.addr, err)
	}
	if err := f.print(e.stdout, resp); err != nil {
		return err
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		return errDenied
	}
	return nil
}

// request builds the CheckRequest a sidecar would send, reporting every bad
// flag at once.
func (f *checkFlags) request(stdin io.Reader) (*authv3.CheckRequest, error) {
	var errs []error
	key, err := f.rawKey(stdin)
	if err != nil {
		errs = append(errs, err)
	}
	headers := map[string]string{}
	if key != "" {
		if strings.EqualFold(f.keyHeader, "authorization") {
			headers["authorization"] = "Bearer " + key
		} else {
			headers[strings.ToLower(f.keyHeader)] = key
		}
	}
	for k, v := range pairs(&errs, "--header", f.headers) {
		headers[strings.ToLower(k)] = v
	}
	ext := pairs(&errs, "--context", f.context)
	if net.ParseIP(f.sourceIP) == nil {
		errs = append(errs, fmt.Errorf("--source-ip %q: not an IP address", f.sourceIP))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	headers[":method"], headers[":path"], headers[":authority"] = f.method, f.path, f.host
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: socketAddress(f.sourceIP, 50000)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: f.method, Path: f.path, Host: f.host, Scheme: "http", Protocol: "HTTP/1.1", Headers: headers,
		}},
		ContextExtensions: ext,
	}}, nil
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// print shows the decision. The response never contains the key: keygate
// only lists the credential header's name for removal.
func (f *checkFlags) print(w io.Writer, resp *authv3.CheckResponse) error {
	if f.jsonOut {
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if ok := resp.GetOkResponse(); codes.Code(resp.GetStatus().GetCode()) == codes.OK {
		fmt.Fprintln(w, "ALLOW")
		for _, h := range ok.GetHeaders() {
			fmt.Fprintf(w, "  set     %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		for _, name := range ok.GetHeadersToRemove() {
			fmt.Fprintf(w, "  remove  %s\n", name)
		}
		if md := resp.GetDynamicMetadata(); md != nil {
			b, _ := json.Marshal(md.AsMap())
			fmt.Fprintf(w, "  metadata %s\n", b)
		}
		return nil
	}
	denied := resp.GetDeniedResponse()
	fmt.Fprintf(w, "DENY %s %s\n", strconv.Itoa(int(denied.GetStatus().GetCode())), resp.GetStatus().GetMessage())
	for _, h := range denied.GetHeaders() {
		fmt.Fprintf(w, "  %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	if body := denied.GetBody(); body != "" {
		fmt.Fprintf(w, "  body: %s\n", strings.TrimSpace(body))
	}
	return nil
}

// credentials are plain text, or TLS with --tls-ca (and a client
// certificate with --tls-cert/--tls-key).
func (f *checkFlags) credentials() (credentials.TransportCredentials, error) {
	if f.tlsCA == "" {
		if f.tlsCert != "" || f.tlsKey != "" {
			return nil, errors.New("--tls-cert and --tls-key need --tls-ca")
		}
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(f.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	c := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate", f.tlsCA)
	}
	if f.tlsCert != "" || f.tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(c), nil
}
