package sluice

import "github.com/sluice-stream/sluice/internal/storage"

// SetStorageOptions configures the resolver of the session's object-store
// paths (tests count its requests or keep the environment out).
func SetStorageOptions(s *Session, opts ...storage.ResolverOption) { s.storageOptions = opts }
