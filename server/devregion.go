package server

// In --dev any well-formed Region in the credential scope is accepted, so
// that a client configured for its own Region (eu-west-1, the SDK's default
// of a developer's profile …) works unchanged against a throw-away server.
// A request scoped to a Region the server does not serve goes to the home
// Region: the ARNs it answers name the Region it was started with
// (--region), whatever the request was scoped to.

// wellFormedRegion reports whether r looks like an AWS Region name:
// lower-case letters, digits and dashes, as botocore's partitions have them
// (us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-5).
func wellFormedRegion(r []byte) bool {
	if len(r) == 0 || len(r) > 32 || r[0] == '-' || r[len(r)-1] == '-' {
		return false
	}
	dashes := 0
	for i, c := range r {
		switch {
		case c == '-':
			if r[i-1] == '-' {
				return false
			}
			dashes++
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return dashes >= 1
}
