"""The config stage: versions.yaml, upgrade-policy.yaml, the matrix and the catalog loaded into strict models,
and each component's spec (`specs_stage.py`)."""
