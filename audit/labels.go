package audit

// Domain-separation labels: each starts what one kind of signature by the
// audit signing key covers, so that no signature can be taken for another
// kind. Never change their bytes: existing trails and anchors are signed
// over them.
const (
	// labelDigest: every digest record's signature (digest.go).
	labelDigest = "coffer/audit-digest/v1\n"
	// labelAnchor: the anchor file's signature (anchor.go).
	labelAnchor = "coffer/audit-anchor/v1\n"
	// labelGap: every acknowledged-gap record's signature (gap.go).
	labelGap = "coffer/audit-gap/v1\n"
	// labelArchive: the archive manifest's signature (archive.go).
	labelArchive = "coffer/audit-archive/v1\n"
)
