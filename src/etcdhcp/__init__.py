"""etcdhcp: a DHCPv4 server whose lease state lives in etcd."""

__version__ = "0.1.0"
