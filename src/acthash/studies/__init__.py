"""Companion studies: each module runs one study end to end into a run directory
(lsh, regions, spectrum, binary)."""
