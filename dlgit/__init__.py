"""dlgit keeps deep-learning research repositories honest: branch-model hooks and git flows."""

__version__ = "0.1.0"
