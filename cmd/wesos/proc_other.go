//go:build !unix

package main

import (
	"os"
	"os/exec"
)

// setProcessGroup does nothing where there are no process groups.
func setProcessGroup(cmd *exec.Cmd) {}

// terminate asks the process to stop, where the system can.
func terminate(cmd *exec.Cmd) error {
	if err := cmd.Process.Signal(os.Interrupt); err == nil {
		return nil
	}
	return cmd.Process.Kill()
}

// kill ends the process.
func kill(cmd *exec.Cmd) error {
	return cmd.Process.Kill()
}
