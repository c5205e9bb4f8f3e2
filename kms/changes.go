package kms

import "strings"

// A change feed from other nodes sharing the store (keystore/postgres's
// Listener) reaches the caches here. Changes name the raw store key: this
// file undoes the placement of schema.go (Region in keys) to find what the
// caches hold it under.

// ApplyChange drops what the caches hold of the record another node
// changed at storeKey in bucket. A key of a cached bucket that does not
// have the shape it should drops every cache: better a few store reads
// than a stale answer. Buckets the caches do not hold are ignored.
//
// The change reaches the caches of every Region's Service of the process
// (regions.go).
func (s *Service) ApplyChange(bucket, storeKey string) {
	for _, p := range s.Regions() {
		p.applyChange(bucket, storeKey)
	}
}

func (s *Service) applyChange(bucket, storeKey string) {
	switch bucket {
	case bucketKeys: // <region>/<key id>
		if r, id, ok := strings.Cut(storeKey, "/"); ok && id != "" {
			if r == s.region {
				s.cache.invalidate(cacheKey, id)
			}
			return
		}
	case bucketGrants: // <region>/<key id>/<grant id>
		if _, rest, ok := strings.Cut(storeKey, "/"); ok {
			if id, _, ok := strings.Cut(rest, "/"); ok && id != "" {
				s.cache.invalidate(cacheGrants, id)
				return
			}
		}
	case bucketAliases: // <account>/<region>/<alias name>, cached as <account>/<alias name>
		if account, rest, ok := strings.Cut(storeKey, "/"); ok {
			if _, name, ok := strings.Cut(rest, "/"); ok && name != "" {
				s.cache.invalidate(cacheAlias, aliasStoreKey(account, name))
				return
			}
		}
	case bucketPrincipals: // by ARN, global
		s.cache.invalidate(cachePrincipal, storeKey)
		return
	case bucketAccessKeys: // by access key ID, global
		s.cache.invalidate(cacheAccessKey, storeKey)
		return
	default:
		return
	}
	s.cache.dropAll()
}

// DropCaches empties every cache, zeroing the secrets it held: for a node
// that may have missed changes (its change feed was lost).
func (s *Service) DropCaches() {
	for _, p := range s.Regions() {
		p.cache.dropAll()
	}
}
