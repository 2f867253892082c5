"""Key hierarchy, envelope encryption, secrets on disk."""
