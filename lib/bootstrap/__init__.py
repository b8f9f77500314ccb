"""Bringing clusters and nodes up and down, outside the master daemon.

- :mod:`.cluster`: ``gnt-cluster init`` (:func:`~.cluster.InitCluster`),
  the end of ``destroy``, ``master-failover`` with the master vote;
- :mod:`.node_setup`: preparing a new node for ``gnt-node add``.
"""
