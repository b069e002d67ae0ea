"""A sharded index: one published directory, one manifest, several shards built and searched in parallel.

Documents go to shards by a stable hash of their id (`partition`), every shard shares one trained dense
quantizer and one set of BM25 collection statistics (`lexical`), so the fan-out (`search`) ranks exactly as
the single-node index of the same corpus. `build` runs on Ray (Ray Data actor pools embed, Ray tasks build the
shards); `layout` writes and reads the directory with `index.store`'s atomic publication; `updates` applies
PubMed update files to the owning shards. docs/scale-out.md has the design and the PubMed sizing.
"""
