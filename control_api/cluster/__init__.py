"""Several nodes on one store: node identity and heartbeats, lost calls, and REST
updates forwarded to the node that holds the call (docs/deploy.md)."""

from control_api.cluster.forward import ClusterLiveCalls, cluster_router
from control_api.cluster.node import Node

__all__ = ["ClusterLiveCalls", "Node", "cluster_router"]
