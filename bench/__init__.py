"""The etcdhcp benchmark: etcdhcp and Kea driven by perfdhcp in network namespaces.

Run it with ``bench/run.sh`` or ``make bench``; bench/README.md explains the numbers.
"""
