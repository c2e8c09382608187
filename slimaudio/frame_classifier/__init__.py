"""Frame classification on the prepared log-mel frames (data/sounds/, read by
slimaudio.datasets.sounds): training of the Keras ResNet and frame- and clip-level evaluation."""
