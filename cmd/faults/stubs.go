package main

import "context"

func activity(ctx context.Context, s *scenario) error { return nil }
