"""Reference agent designs. Each module exposes `build(kit)`; load them by name
(`react`), by file (`agents/react.py:build`) or by module (`pkg.mod:build`)."""
