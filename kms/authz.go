package kms

// forgetPrincipal drops what is cached about a principal's policies.
func (s *Service) forgetPrincipal(arn string) {}

// validateIdentityPolicy checks an identity policy document.
func (s *Service) validateIdentityPolicy(doc string) error { return validatePolicy(doc) }
