"""``vault demo``: the whole patient/provider/operator story, played over HTTP.

A client of a running vault, nothing more: it talks to the API with httpx as a patient
app, a provider's system and the operator would, and checks the access history's proofs
against the chain itself. ``vault bench api`` reuses its client.
"""
