//go:build !unix

package browsertest

import "os/exec"

// ownGroup leaves cmd as it is: process groups are a Unix notion.
func ownGroup(*exec.Cmd) {}

// killGroup kills cmd's process (only it, where there are no process
// groups).
func killGroup(cmd *exec.Cmd) { cmd.Process.Kill() }
