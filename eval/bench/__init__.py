"""`qa bench`: speed measurements that anyone can rerun; each prints medians and ratios and writes JSON.

Modules: `indexing` (pipeline vs raw encoder throughput), `latency` (/ask on loopback and the split of one
request), `scale` (FAISS index kinds from 10k to 1M vectors), `peers` (txtai and Haystack on the same work),
`report` (one table from the JSON files). Nothing here is imported by the product, and no speed target is
checked in a unit test: the targets are printed next to the figures.
"""
