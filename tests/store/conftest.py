"""Store fixtures: migrated databases of both backends come from ``tests/backends.py``
(registered for every directory by ``tests/conftest.py``)."""
