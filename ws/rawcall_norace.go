//go:build !race

package ws

// rawCalls: the direct transport's short reads and writes make raw system
// calls (socketRead, socketWrite: sock_linux.go).
const rawCalls = true
