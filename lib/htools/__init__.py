"""htools: Ganeti's cluster model, scoring and allocation tools.

The cluster model (``model``) is loaded from an iallocator request
(``loader_iallocator``), from htools' text format (``loader_text``) or from
a simulated specification (``loader_simu``); ``score`` computes the cluster
score hbal minimises, ``policy`` checks instance policies and ``allocate``
and ``evacuate`` solve the iallocator requests. ``hail`` is the iallocator
program built on them.
"""
