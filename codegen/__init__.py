"""Code generation: spec/*.yaml -> generated/sync_generated/*.py (run `make generate`)."""
