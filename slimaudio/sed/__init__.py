"""Sound-event classification on the prepared log-mel frames (data/sounds/): data loading,
training of the Keras ResNet and frame-/clip-level evaluation."""
