package main

import "context"

func hostile(ctx context.Context, s *scenario) error  { return nil }
func activity(ctx context.Context, s *scenario) error { return nil }
