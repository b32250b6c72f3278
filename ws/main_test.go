package ws

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wesos/wesos/internal/testpeer"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// connection, server and helper a test starts must end. At the end it says
// which third-party peers were missing, if any: their tests were skipped.
func TestMain(m *testing.M) {
	code := m.Run()
	testpeer.Report("ws")
	if code == 0 {
		// runtime.handleEvent: on js/wasm, the runtime's goroutine
		// that waits for JavaScript's events.
		if err := goleak.Find(goleak.IgnoreAnyFunction("runtime.handleEvent")); err != nil {
			os.Stderr.WriteString("goleak: Errors on successful test run: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
