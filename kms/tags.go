package kms

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/policy"
)

var tagPattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// mergeTags validates add and applies it to cur (replacing values of keys
// already present), keeping tags sorted by key.
func mergeTags(cur, add []Tag) ([]Tag, error) {
	var v validator
	seen := map[string]bool{}
	for _, t := range add {
		v.length("tags.member.tagKey", t.TagKey, 1, 128)
		v.pattern("tags.member.tagKey", t.TagKey, tagPattern)
		v.length("tags.member.tagValue", t.TagValue, 0, 256)
		v.pattern("tags.member.tagValue", t.TagValue, tagPattern)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	for _, t := range add {
		if strings.HasPrefix(strings.ToLower(t.TagKey), "aws:") {
			return nil, newError(ErrTag, "Tag keys beginning with aws: are reserved for AWS use: %s", t.TagKey)
		}
		if seen[t.TagKey] {
			return nil, newError(ErrTag, "Duplicate tag keys: %s", t.TagKey)
		}
		seen[t.TagKey] = true
	}
	out := slices.Clone(cur)
	for _, t := range add {
		i := slices.IndexFunc(out, func(o Tag) bool { return o.TagKey == t.TagKey })
		if i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	if len(out) > maxTagsPerKey {
		return nil, newError(ErrLimitExceeded, "A KMS key can have at most %d tags.", maxTagsPerKey)
	}
	slices.SortFunc(out, func(a, b Tag) int { return strings.Compare(a.TagKey, b.TagKey) })
	return out, nil
}

// TagResourceInput is the TagResource request.
type TagResourceInput struct {
	KeyId string `json:"KeyId"`
	Tags  []Tag  `json:"Tags"`
}

// TagResource adds or replaces tags on a key.
func (s *Service) TagResource(ctx context.Context, c *Caller, in *TagResourceInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.required("tags", in.Tags != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	pc := func(r *keyRecord) *policy.Context { return withRequestTags(s.requestContext(ctx, c, r), in.Tags) }
	_, err := s.mutateKey(ctx, c, &opTagResource.Keys[0], in.KeyId, pc, func(r *keyRecord) error {
		if err := opTagResource.Keys[0].checkState(r); err != nil {
			return err
		}
		if err := checkCustomerManaged(r); err != nil {
			return err
		}
		tags, err := mergeTags(r.Tags, in.Tags)
		if err != nil {
			return err
		}
		r.Tags = tags
		return nil
	})
	return &Empty{}, err
}

// UntagResourceInput is the UntagResource request.
type UntagResourceInput struct {
	KeyId   string   `json:"KeyId"`
	TagKeys []string `json:"TagKeys"`
}

// UntagResource removes tags by key; absent keys are ignored.
func (s *Service) UntagResource(ctx context.Context, c *Caller, in *UntagResourceInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.required("tagKeys", in.TagKeys != nil)
	for _, k := range in.TagKeys {
		v.length("tagKeys.member", k, 1, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	// UntagResource names tag keys only: aws:TagKeys, no aws:RequestTag.
	pc := func(r *keyRecord) *policy.Context {
		p := s.requestContext(ctx, c, r)
		p.TagKeys = in.TagKeys
		return p
	}
	_, err := s.mutateKey(ctx, c, &opUntagResource.Keys[0], in.KeyId, pc, func(r *keyRecord) error {
		if err := opUntagResource.Keys[0].checkState(r); err != nil {
			return err
		}
		if err := checkCustomerManaged(r); err != nil {
			return err
		}
		r.Tags = slices.DeleteFunc(r.Tags, func(t Tag) bool { return slices.Contains(in.TagKeys, t.TagKey) })
		return nil
	})
	return &Empty{}, err
}

// ListResourceTagsInput is the ListResourceTags request.
type ListResourceTagsInput struct {
	KeyId string `json:"KeyId"`
	ListInput
}

// ListResourceTagsOutput is the ListResourceTags response.
type ListResourceTagsOutput struct {
	Tags       []Tag  `json:"Tags"`
	NextMarker string `json:"NextMarker,omitempty"`
	Truncated  bool   `json:"Truncated"`
}

// ListResourceTags pages through a key's tags in key order.
func (s *Service) ListResourceTags(ctx context.Context, c *Caller, in *ListResourceTagsInput) (*ListResourceTagsOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	after, err := decodeMarker("tags", in.Marker)
	if err != nil {
		return nil, err
	}
	r, err := s.keyFor(ctx, c, &opListResourceTags.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 50, 50)
	out := &ListResourceTagsOutput{Tags: []Tag{}}
	for _, t := range r.Tags {
		if after != "" && t.TagKey <= after {
			continue
		}
		if len(out.Tags) == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker("tags", out.Tags[len(out.Tags)-1].TagKey)
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}
