package discovery

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(netnsChildEnv) != "" {
		// Re-executed inside a network namespace by TestLANNamespaces.
		os.Exit(netnsChild())
	}
	goleak.VerifyTestMain(m)
}
