"""`python -m sync_sdk`: the `sync-sdk` command line (needs the `cli` extra)."""

from sync_sdk.cli import main

if __name__ == "__main__":
    main()
