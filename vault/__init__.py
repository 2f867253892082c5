"""Biometric-gated healthcare data vault with on-chain consent."""

__version__ = "0.1.0"
