"""`python -m bench` (`make bench`): measures the performance figures of the "Reliability and
performance proof" issue on this machine, in one run, and prints them with their targets.

Nothing here asserts a time: a figure that misses its target is reported as MISSED and the run
still exits 0. Only loopback sockets, a temporary data directory and child processes that are
stopped on exit are used.
"""
