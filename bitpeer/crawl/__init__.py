"""
The crawl: discovery of first addresses, the crawl policy, our external
address, snapshots, and the ``bitpeer-crawl`` service that runs them.
"""
