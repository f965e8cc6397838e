# Entry points for people; CI runs .ci/run (scripts/test.sh). Every target needs
# Debian 12 and, except `deb`, root.
.PHONY: deb deb-check bench

# dist/etcdhcp_<version>_all.deb, built from a copy of the work tree.
deb:
	bash scripts/build-deb.sh dist

# Build the .deb, install it with apt into a clean Debian 12 root, boot that root with
# systemd and serve a real dhclient from etcdhcp.service (scripts/deb-check.sh says
# what it checks); 30-60 s with today's root cached, 75-120 s without, on 2 idle cores.
deb-check:
	bash scripts/bootstrap.sh
	bash scripts/deb-check.sh

# The benchmark, etcdhcp against Kea under perfdhcp (bench/README.md): ~15 min, needs
# root and scripts/bootstrap.sh. Options: make bench BENCH_ARGS="--only sweep --quick".
bench:
	bench/run.sh $(BENCH_ARGS)
