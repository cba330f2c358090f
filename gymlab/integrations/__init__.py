"""gymlab's algorithms inside other training frameworks (each behind its own extra)."""
