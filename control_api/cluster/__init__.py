"""Several nodes on one store: node identity and heartbeats, lost calls, and REST
updates forwarded to the node that holds the call (docs/deploy.md). The endpoint
peers forward to is the API's (control_api/api/cluster.py)."""

from control_api.cluster.conferences import ClusterConferences
from control_api.cluster.forward import ClusterLiveCalls
from control_api.cluster.node import Node

__all__ = ["ClusterConferences", "ClusterLiveCalls", "Node"]
