package ws

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// connection, server and helper a test starts must end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
