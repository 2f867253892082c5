"""Biometric gate: photo -> face embedding (in memory only) -> protected template.

No HTTP and no storage policy here beyond the template repository; see docs/biometrics.md.
"""
