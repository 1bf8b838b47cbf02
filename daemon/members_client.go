package daemon

import (
	"context"
	"net/http"
	"net/url"
)

// Members is GET /v1/members?share=REF.
func (c *Client) Members(ctx context.Context, ref string) (MemberList, error) {
	var l MemberList
	err := c.do(ctx, http.MethodGet, "/v1/members?share="+url.QueryEscape(ref), nil, &l)
	return l, err
}

// RemoveMember is POST /v1/members/remove.
func (c *Client) RemoveMember(ctx context.Context, ref, device string) (ChangeResult, error) {
	var r ChangeResult
	err := c.do(ctx, http.MethodPost, "/v1/members/remove", map[string]any{"share": ref, "device": device}, &r)
	return r, err
}

// ApproveChange is POST /v1/members/approve.
func (c *Client) ApproveChange(ctx context.Context, ref, change string) (ChangeResult, error) {
	var r ChangeResult
	err := c.do(ctx, http.MethodPost, "/v1/members/approve", map[string]any{"share": ref, "change": change}, &r)
	return r, err
}

// SetOwners is POST /v1/members/owners.
func (c *Client) SetOwners(ctx context.Context, ref string, add []string, threshold int) (ChangeResult, error) {
	var r ChangeResult
	err := c.do(ctx, http.MethodPost, "/v1/members/owners", map[string]any{"share": ref, "add": add, "threshold": threshold}, &r)
	return r, err
}

// Revert is POST /v1/revert.
func (c *Client) Revert(ctx context.Context, ref string, paths []string) (RevertResult, error) {
	var r RevertResult
	err := c.do(ctx, http.MethodPost, "/v1/revert", map[string]any{"share": ref, "paths": paths}, &r)
	return r, err
}
