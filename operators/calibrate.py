"""Placeholder until this module is written; it registers nothing."""
CLASSES = ()
