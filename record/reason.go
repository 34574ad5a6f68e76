package record

import "errors"

// reasons lists the sentinel errors a verification can fail with.
var reasons = []error{
	ErrTooLarge, ErrMalformed, ErrBadSignature, ErrSignerMismatch, ErrPeerMismatch,
	ErrWrongCID, ErrWrongNetwork, ErrExpired, ErrIssuedInFuture, ErrBadTTL,
	ErrBadVersion, ErrBadName, ErrBadNetwork, ErrBadAddr, ErrBadMetadata,
	ErrBadKey, ErrOlderSeq, ErrNotAllowed,
}

// Reason returns the sentinel error that err wraps, for counting rejections
// by cause, or nil when err is not a record verification error.
func Reason(err error) error {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return r
		}
	}
	return nil
}
