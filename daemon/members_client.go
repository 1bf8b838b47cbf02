package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Members is GET /v1/members?share=REF.
func (c *Client) Members(ctx context.Context, ref string) (MemberList, error) {
	var l MemberList
	err := c.call(ctx, http.MethodGet, "/v1/members?share="+url.QueryEscape(ref), nil, &l)
	return l, err
}

// RemoveMember is POST /v1/members/remove.
func (c *Client) RemoveMember(ctx context.Context, ref, device string) (ChangeResult, error) {
	var r ChangeResult
	err := c.call(ctx, http.MethodPost, "/v1/members/remove", map[string]any{"share": ref, "device": device}, &r)
	return r, err
}

// ApproveChange is POST /v1/members/approve.
func (c *Client) ApproveChange(ctx context.Context, ref, change string) (ChangeResult, error) {
	var r ChangeResult
	err := c.call(ctx, http.MethodPost, "/v1/members/approve", map[string]any{"share": ref, "change": change}, &r)
	return r, err
}

// SetOwners is POST /v1/members/owners.
func (c *Client) SetOwners(ctx context.Context, ref string, add []string, threshold int) (ChangeResult, error) {
	var r ChangeResult
	err := c.call(ctx, http.MethodPost, "/v1/members/owners", map[string]any{"share": ref, "add": add, "threshold": threshold}, &r)
	return r, err
}

// Revert is POST /v1/revert.
func (c *Client) Revert(ctx context.Context, ref string, paths []string) (RevertResult, error) {
	var r RevertResult
	err := c.call(ctx, http.MethodPost, "/v1/revert", map[string]any{"share": ref, "paths": paths}, &r)
	return r, err
}

// call is do with a JSON request body.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://blueshift"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxEventLine))
	if err != nil {
		return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &APIError{Code: resp.StatusCode}
		if json.Unmarshal(b, ae) == nil && ae.Message != "" {
			return ae
		}
		return fmt.Errorf("ask the daemon (%s %s): %s", method, path, resp.Status)
	}
	return json.Unmarshal(b, out)
}
