"""Model definitions (torch and Keras)."""
