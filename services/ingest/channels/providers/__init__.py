"""One module per provider; each registers itself with `registry.register`."""
