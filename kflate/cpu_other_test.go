//go:build !unix

package kflate_test

import "time"

// processCPU returns 0 where getrusage is missing: no CPU figure.
func processCPU() time.Duration { return 0 }
