"""SQL metadata (SQLAlchemy 2 + Alembic) and the blob store for ciphertext."""
