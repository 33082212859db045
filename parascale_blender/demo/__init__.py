"""The embedded end-to-end demo (`parascale demo`, `make demo`): a tabletop move carried to a galaxy, run.py.
May import: the adapter (parascale_blender), core, bpy, numpy, matplotlib; nothing imports it but the CLI and tests."""
