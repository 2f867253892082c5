"""Health records: FHIR validation, versioned encrypted storage, documents, bundles."""
