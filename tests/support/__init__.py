"""What the test modules share: constants, helper functions and server machinery.

Test modules import from here; ``tests/conftest.py`` keeps only pytest's fixtures and hooks.
"""
