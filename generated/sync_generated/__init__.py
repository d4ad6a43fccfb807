# Generated from spec/*.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.
"""Code generated from spec/: pydantic models of entities and wire frames (and the frames
as TypedDicts, `protocol_dicts`), the client surface (states, options, events), the error
classes, the typed REST client and its resource classes. Applications import from
`sync_sdk`, which re-exports what they need."""
