package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Client calls the admin API of a running server over its control
// socket (or, with NewHTTPClient, over HTTPS with a token).
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the control socket at path; it fails
// with ErrNotRunning when no server listens there.
func NewClient(ctx context.Context, path string) (*Client, error) {
	c, err := Dial(ctx, path)
	if err != nil {
		return nil, err
	}
	c.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return Dial(ctx, path) },
		// A reload or a backup may take a while; nothing waits on a
		// peer elsewhere.
		ResponseHeaderTimeout: 10 * time.Minute,
	}
	return &Client{base: "http://ode", hc: &http.Client{Transport: tr}}, nil
}

// NewHTTPClient returns a client of the HTTPS admin API at base (such as
// "https://xmpp.example.org:5443") with the bearer token; hc may be nil.
func NewHTTPClient(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: base, token: token, hc: hc}
}

// APIError is a command the server refused or failed.
type APIError struct {
	Status int    // the HTTP status
	Msg    string // the server's message
}

func (e *APIError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrNotFound) and the others work on the
// server's answers.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrExists:
		return e.Status == http.StatusConflict
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	case ErrUnsupported:
		return e.Status == http.StatusNotImplemented
	}
	return false
}

// Get calls a GET command with the query parameters and decodes the
// answer into out.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return c.do(req, out)
}

// Post calls a POST command with the request and decodes the answer
// into out.
func (c *Client) Post(ctx context.Context, path string, r Request, out any) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

func (c *Client) do(req *http.Request, out any) error {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API: read the answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s: %s", res.Status, bytes.TrimSpace(data))
		}
		return &APIError{Status: res.StatusCode, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API: answer: %w", err)
	}
	return nil
}

// IsNotRunning reports whether err says that the server does not run.
func IsNotRunning(err error) bool { return errors.Is(err, ErrNotRunning) }
