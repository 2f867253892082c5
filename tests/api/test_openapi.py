from __future__ import annotations

from fastapi.testclient import TestClient


def test_every_operation_is_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operations = [(p, m, op) for p, ops in spec["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 30
    for path, method, op in operations:
        assert op.get("summary"), (method, path)
        assert op.get("tags"), (method, path)
        if path != "/healthz":
            for status in ("401", "404", "422", "503"):
                assert status in op["responses"], (method, path, status)
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"code", "message", "details"}
    # Bodies carry examples a reader can paste.
    create = spec["paths"]["/patient/records"]["post"]["requestBody"]["content"]["application/json"]
    assert create.get("examples") or create["schema"].get("examples")
    assert spec["components"]["schemas"]["Record"].get("examples")
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
