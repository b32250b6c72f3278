//go:build race

package ws

// rawCalls is false under the race detector: the direct transport's reads
// and writes then go through syscall.Read and syscall.Write, whose
// annotations tell the detector that what one goroutine wrote before it
// sent bytes happened before what another does once it received them, as
// with any net.Conn (a raw system call says nothing to it).
const rawCalls = false
