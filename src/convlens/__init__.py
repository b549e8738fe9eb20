"""convlens: train a CNN, look inside it, write the report."""

__version__ = "0.1.0"
