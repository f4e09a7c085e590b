"""saesteer: find which SAE features of a language model are good for steering it."""

__version__ = "0.1.0"
