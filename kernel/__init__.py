"""The kernel: what every service shares and nothing of ours sits below.

Ports (the interfaces adapters implement), API errors, authentication and accounts, the batch
processing contract, settings, telemetry, customer keys and request-body limits. It imports only
libraries and `schemas`; `services/*` import it and `schemas`; the composition roots (`cem`),
adapters (`cem.adapters`) and the CLI import everything. `tests/unit/test_import_layers.py`
keeps it so.
"""
