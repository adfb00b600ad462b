"""Event schemas of the platform: the v1 envelope and the typed event families."""
