"""casebook: end-to-end machine-learning interview cases."""

__version__ = "0.1.0"
