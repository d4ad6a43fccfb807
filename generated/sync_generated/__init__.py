# Generated from spec/*.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.
"""Code generated from spec/: pydantic models of entities and wire frames, the client
surface (states, options, events) and the error classes. Applications import from
`sync_sdk`, which re-exports what they need."""
