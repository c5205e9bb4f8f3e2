package kms

import (
	"fmt"
	"sync"
)

// One Coffer serves a set of Regions: one Service per Region, all over the
// same store, root and record key. The records view places Region-scoped
// records under their Region (schema.go), so keys, aliases, grants and
// usage are per Region by construction; principals, access keys and the
// outbox are global, as IAM is, and the Services of one process share the
// caches of those (an access key deleted through one is gone for all).

// regionGroup is the Services of one process, by Region.
type regionGroup struct {
	mu sync.RWMutex
	m  map[string]*Service
}

// InRegion returns the Service of region over s's store, root and account,
// making it on first call. Every Service of the group can reach the others
// (multi-Region keys, mrk.go).
func (s *Service) InRegion(region string) (*Service, error) {
	if !regionPattern.MatchString(region) {
		return nil, fmt.Errorf("kms: region %q is not a region name", region)
	}
	g := s.regions
	g.mu.Lock()
	defer g.mu.Unlock()
	if o := g.m[region]; o != nil {
		return o, nil
	}
	recs, ok := s.store.(*records)
	if !ok {
		return nil, fmt.Errorf("kms: internal error: the store is not a records view")
	}
	o := &Service{
		region:   region,
		account:  s.account,
		root:     s.root,
		ks:       s.ks,
		now:      s.now,
		random:   s.random,
		node:     s.node,
		takeover: s.takeover,
		cacheCfg: s.cacheCfg,
		regions:  g,
	}
	o.cache = newCaches(s.cacheCfg, s.now)
	// IAM is global: one cache of principals and access keys for all.
	o.cache.identities = s.cache.identities
	o.cache.accessKeys = s.cache.accessKeys
	o.last.started = s.now().UTC()
	o.store = &records{store: recs.store, key: recs.key, place: inRegion(region)}
	g.m[region] = o
	return o, nil
}

// peer returns the served Service of region, or nil when region is not
// served.
func (s *Service) peer(region string) *Service {
	g := s.regions
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m[region]
}

// Regions returns the Services of every served Region, s's among them.
func (s *Service) Regions() []*Service {
	g := s.regions
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*Service, 0, len(g.m))
	for _, o := range g.m {
		out = append(out, o)
	}
	return out
}
