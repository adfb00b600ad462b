"""One router per resource; the app includes them all."""
