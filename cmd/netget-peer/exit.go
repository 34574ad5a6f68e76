package main

import (
	"errors"
	"fmt"
)

// Exit statuses. Every exit status comes from exitCode.
const (
	exitOK       = 0
	exitFailure  = 1 // the operation failed or found nothing
	exitUsage    = 2 // bad flags, arguments or names
	exitInternal = 3
)

// exitError carries the process exit status an error should produce.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as the user's mistake: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error from the command tree to an exit status.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitFailure
}
