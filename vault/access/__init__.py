"""Access to a patient's data: scopes, purposes, requests, and the consent decision."""
