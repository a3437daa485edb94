"""The package version, in one place: the CLI, calibration profiles and the build read it."""

__version__ = "0.3.0"
