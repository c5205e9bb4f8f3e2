package server

import (
	"bytes"

	"github.com/coffer-kms/coffer/kms"
)

// unknownOperation answers an X-Amz-Target that names no operation served
// here. An operation of AWS's KMS model that Coffer does not serve yet is
// UnsupportedOperationException, naming it, so that a client learns the
// call is real and only missing here; anything else is AWS's bare
// UnknownOperationException. Both come before the signature is looked at.
func unknownOperation(target []byte) error {
	if name, ok := bytes.CutPrefix(target, []byte("TrentService.")); ok && kms.IsAWSOperation(string(name)) {
		return &protocolError{"UnsupportedOperationException", 400, "Coffer does not serve " + string(name) + " yet."}
	}
	return &protocolError{"UnknownOperationException", 400, ""}
}
