"""Provider webhooks: one module per provider in `providers/`, registered on import."""
