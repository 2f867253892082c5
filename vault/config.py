"""The vault's one configuration object.

Every setting comes from :class:`Settings` (environment variables prefixed ``VAULT_``,
or keyword arguments in tests). No other module reads ``os.environ``. Settings are
built by :func:`get_settings` or passed explicitly — never at import time — so tests
and several processes can each have their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vault.errors import ConfigurationError

#: Values that look like somebody forgot to set a real secret.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "password", "test", "xxx", "todo"}
)

ANVIL_CHAIN_ID = 31337


def _project_root() -> Path:
    # vault/config.py -> repository root; the toolchain (node_modules, contracts/) lives there.
    return Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration of one vault process."""

    model_config = SettingsConfigDict(env_prefix="VAULT_", extra="forbid", frozen=True)

    # --- where things live ---------------------------------------------------------
    data_dir: Path = Field(default=Path("data"), description="Root of all local state.")
    project_root: Path = Field(default_factory=_project_root)
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a SQLite file in data_dir."
    )
    blob_dir: Path | None = Field(default=None, description="Local blob store directory.")
    blob_store: Literal["local", "s3"] = Field(
        default="local", description="Where ciphertext lives: blob_dir, or an S3 bucket."
    )
    blob_s3_bucket: str = Field(default="", description="S3 bucket (blob_store=s3).")
    blob_s3_prefix: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9._-]+/)*$",
        description="Key prefix inside the bucket: empty, or segments ending with '/'.",
    )
    blob_s3_endpoint_url: str = Field(
        default="",
        pattern=r"^(https?://.+)?$",
        description="S3-compatible endpoint (MinIO, Ceph...); empty means AWS for the region.",
    )
    blob_s3_region: str = Field(default="us-east-1", description="S3 region.")
    blob_s3_access_key_id: SecretStr | None = Field(
        default=None, description="S3 access key id; unset: boto3's own credential chain."
    )
    blob_s3_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret access key (with blob_s3_access_key_id)."
    )

    # --- chain -----------------------------------------------------------------------
    chain_rpc_url: str = Field(
        default="", description="EVM JSON-RPC URL; empty means an embedded Anvil node."
    )
    chain_id: int = Field(default=ANVIL_CHAIN_ID, description="Chain id the vault expects.")
    anvil_port: int = Field(default=0, description="Embedded Anvil port; 0 picks a free one.")
    operator_key_file: Path | None = None
    consent_contract_address: str = Field(
        default="", description="Use this deployment instead of the one the vault recorded."
    )

    # --- secrets -----------------------------------------------------------------------
    master_key_file: Path | None = None
    master_keyring: SecretStr | None = Field(
        default=None, description="Keyring given inline (overrides master_key_file)."
    )
    pepper_file: Path | None = None
    pepper: SecretStr | None = Field(default=None, description="Pepper given inline (hex).")

    # --- records -------------------------------------------------------------------------
    record_max_bytes: int = Field(
        default=1 << 20, gt=0, description="Largest FHIR resource accepted (bytes of JSON)."
    )
    document_max_bytes: int = Field(
        default=25 << 20, gt=0, description="Largest document (PDF, image) accepted."
    )
    bundle_max_bytes: int = Field(
        default=64 << 20, gt=0, description="Largest FHIR Bundle accepted for import."
    )
    bundle_max_entries: int = Field(
        default=20_000, gt=0, description="Most entries accepted in one imported Bundle."
    )
    blob_sweep_grace_seconds: int = Field(
        default=3600, ge=0, description="Age before an unfinished write's blob is swept."
    )

    # --- API -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8400
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the admin API; unset: generated in data/secrets/admin.token.",
    )
    token_key_file: Path | None = None
    session_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    siwe_domain: str = Field(
        default="", description="Domain providers sign in to (EIP-4361); default host:port."
    )
    siwe_nonce_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    max_request_bytes: int = Field(
        default=32 << 20, gt=0, description="Largest request body the API reads."
    )
    consent_cache_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description=(
            "How far ahead a provider-read consent decision may be reused while the chain's "
            "latest block stays the same (checked on every read; any new block drops it). "
            "0: every read is one eth_call at the latest block."
        ),
    )
    anchor_interval_seconds: float = Field(
        default=60.0, ge=0, description="Anchor the audit log this often (0: only on demand)."
    )

    # --- biometrics ------------------------------------------------------------------
    face_max_photo_bytes: int = Field(default=15_000_000, gt=0, description="Largest photo.")
    face_max_pixels: int = Field(
        default=40_000_000, gt=0, description="Most pixels decoded (decompression bombs)."
    )
    face_detect_max_side: int = Field(
        default=640, ge=160, description="Photos are downscaled to this long side to detect."
    )
    face_min_size: int = Field(
        default=40, ge=20, description="Smallest face box side (pixels) accepted."
    )
    face_detector_model: str = Field(default="hog", pattern="^(hog|cnn)$")
    face_detector_upsample: int = Field(default=1, ge=0, le=2)
    face_min_match_score: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description=(
            "Score a face must exceed after opening its template, for every enrollment "
            "size; unset: the shipped per-size thresholds (vault/biometrics/data/"
            "operating_point.json, FMR 0.1 % at the 80 % bound on lfw-dev)."
        ),
    )
    face_lockout_threshold: int = Field(
        default=5, ge=1, description="Consecutive failed verifications before backoff."
    )
    face_lockout_base_seconds: float = Field(default=30.0, gt=0)
    face_lockout_max_seconds: float = Field(default=86_400.0, gt=0)
    face_lockout_forget_after_seconds: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description=(
            "A failed-attempt counter of a handle that is not locked and has seen no "
            "attempt for this long is deleted (bounds the table; that handle regains its "
            "free tries)."
        ),
    )

    @field_validator("master_keyring", "pepper", "admin_token")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("placeholder secrets are refused; generate a real one")
        return value

    @model_validator(mode="after")
    def _check_chain(self) -> Settings:
        if self.chain_rpc_url and not self.chain_rpc_url.startswith(("http://", "https://")):
            raise ValueError("chain_rpc_url must be an http(s) URL")
        return self

    # --- derived paths (one place decides the layout of data_dir) ------------------------
    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.resolve()

    @property
    def secrets_dir(self) -> Path:
        return self.resolved_data_dir / "secrets"

    @property
    def chain_dir(self) -> Path:
        return self.resolved_data_dir / "chain"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'vault.db'}"

    @property
    def resolved_blob_dir(self) -> Path:
        return (self.blob_dir or self.resolved_data_dir / "blobs").resolve()

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.secrets_dir / "master.keyring"

    @property
    def resolved_pepper_file(self) -> Path:
        return self.pepper_file or self.secrets_dir / "pepper.key"

    @property
    def admin_token_file(self) -> Path:
        return self.secrets_dir / "admin.token"

    @property
    def resolved_token_key_file(self) -> Path:
        return self.token_key_file or self.secrets_dir / "token.key"

    @property
    def resolved_siwe_domain(self) -> str:
        return self.siwe_domain or f"{self.host}:{self.port}"

    @property
    def resolved_operator_key_file(self) -> Path:
        return self.operator_key_file or self.secrets_dir / "operator.key"

    @property
    def embedded_chain(self) -> bool:
        return not self.chain_rpc_url

    @property
    def node_modules(self) -> Path:
        return self.project_root / "node_modules"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, translating validation errors."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from exc
