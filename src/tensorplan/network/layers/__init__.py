"""The layer classes of the network API, one module per op family (mirroring `ops/`)."""
