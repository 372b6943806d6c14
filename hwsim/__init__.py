"""hwsim: cycle-accurate simulation of PIM-GPT and T3 on a shared DRAM core."""

__version__ = "0.1.0"

__all__ = ["__version__"]
