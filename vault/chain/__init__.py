"""Consent contract: build, deployment, typed client, signing, relaying, health."""
