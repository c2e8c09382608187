"""slimaudio: compress audio neural networks for phones and embedded boards, reproducibly."""

__version__ = "0.1.0"
