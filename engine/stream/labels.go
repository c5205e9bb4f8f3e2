package stream

// Domain-separation labels of the stream format and of LocalProvider. Every
// stream ever written depends on these bytes: never change one; a new
// format gets a new label (and a line in DESIGN.md's label table, which
// kms/design_test.go checks).
const (
	// labelHeaderKey is the HKDF-SHA-256 info of the header key (the
	// header's HMAC-SHA-256 key), derived from the data key with the
	// header's message ID as salt.
	labelHeaderKey = "coffer stream v1 header key"

	// labelBodyKey is the HKDF-SHA-256 info of the body key (the DARE 2.0
	// key), derived from the data key with the header's message ID as salt.
	labelBodyKey = "coffer stream v1 body key"

	// labelLocalWrap is LocalProvider's HKDF-SHA-256 info for the key that
	// wraps a data key (salt: the blob's random salt), and, followed by a
	// zero byte, the provider's key ID and the canonical encryption
	// context, the additional data of that wrap.
	labelLocalWrap = "coffer local provider v1 wrap"

	// labelLocalKeyID is the message HMAC-SHA-256'd under a LocalProvider's
	// master key to name it ("local:" and the first 8 bytes in hex) without
	// revealing it.
	labelLocalKeyID = "coffer local provider v1 key id"
)
