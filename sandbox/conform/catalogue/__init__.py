"""The requirement catalogues, one YAML file per role (package data)."""
