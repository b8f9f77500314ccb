"""The fuzzer of test_fuzz.py, one module per wire.

- :mod:`.gen`: seeded generators of odd values, JSON text, bytes and HTTP;
- :mod:`.core`: the cluster under test (:class:`.core.Target`), the
  bookkeeping of one wire (:class:`.core.Run`), HTTPS exchanges, random
  opcodes;
- :mod:`.luxi`, :mod:`.rapi`, :mod:`.confd`, :mod:`.noded`: a fuzzer per
  wire, each with its cases and oracles.
"""
